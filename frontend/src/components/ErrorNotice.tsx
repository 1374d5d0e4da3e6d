// An API error as the person can act on it (see api/errors.ts), announced when it appears.
import { adviceFor } from "../api/errors";
import { LoraflowApiError } from "../api/client";

export function ErrorNotice({ error }: { error: unknown }) {
  if (error == null) return null;
  const { title, text } = adviceFor(error);
  const code = error instanceof LoraflowApiError ? error.code : "error";
  return (
    <div className="error-notice" role="alert" data-code={code}>
      <strong>{title}</strong>
      <p>{text}</p>
    </div>
  );
}
