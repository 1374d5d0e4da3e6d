import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { takeTokenFromUrl } from "./pages/auth";
import { App } from "./pages/App";
import "./styles.css";

takeTokenFromUrl();
createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
