// The pages: sign-in, navigation and the route's page, inside the LoraflowProvider.
import { useState, type FormEvent } from "react";
import { LoraflowProvider } from "../context";
import { AdminPage } from "./AdminPage";
import { currentToken, isAdmin, readClaims, signIn, signOut } from "./auth";
import { LibraryPage } from "./LibraryPage";
import { LoraDetailPage } from "./LoraDetailPage";
import { onLinkClick, useRoute, type Route } from "./router";
import { UploadPage } from "./UploadPage";

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case "upload":
      return <UploadPage />;
    case "library":
      return <LibraryPage />;
    case "lora":
      return <LoraDetailPage key={route.loraId} loraId={route.loraId} />;
    case "admin":
      return <AdminPage />;
    case "not-found":
      return (
        <main className="page">
          <h1>Not found</h1>
        </main>
      );
  }
}

export function App() {
  const route = useRoute();
  const [token, setToken] = useState(currentToken);
  if (!token) return <SignIn onSignedIn={() => setToken(currentToken())} />;
  const claims = readClaims(token);
  const link = (path: string, label: string, active: boolean) => (
    <a href={path} onClick={onLinkClick(path)} aria-current={active ? "page" : undefined}>
      {label}
    </a>
  );
  return (
    <LoraflowProvider accessToken={currentToken}>
      <header className="site-header">
        <span className="brand">loraflow</span>
        <nav aria-label="Main">
          {link("/upload", "Train", route.page === "upload")}
          {link("/library", "Library", route.page === "library" || route.page === "lora")}
          {isAdmin(claims) && link("/admin", "Review", route.page === "admin")}
        </nav>
        <span className="who">
          {claims?.email ?? claims?.sub}
          <button
            type="button"
            className="link"
            onClick={() => {
              signOut();
              setToken(null);
            }}
          >
            Sign out
          </button>
        </span>
      </header>
      <Page route={route} />
    </LoraflowProvider>
  );
}

function SignIn({ onSignedIn }: { onSignedIn(): void }) {
  const [value, setValue] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!readClaims(value.trim())) return setProblem("That is not a JWT (three base64url parts separated by dots).");
    signIn(value);
    if (!currentToken()) return setProblem("That token has expired.");
    onSignedIn();
  };
  return (
    <main className="page sign-in">
      <h1>Sign in to loraflow</h1>
      <p>
        These pages use your platform account's Supabase session. On a development stack, open the sign-in link that <code>loraflow dev</code> prints, or paste a token
        from <code>loraflow token --user UUID</code>.
      </p>
      <form onSubmit={submit}>
        <label htmlFor="token">Access token</label>
        <textarea id="token" rows={3} value={value} onChange={(e) => setValue(e.target.value)} aria-describedby="token-problem" />
        <p id="token-problem" role="alert">
          {problem}
        </p>
        <button type="submit" className="primary">
          Sign in
        </button>
      </form>
    </main>
  );
}
