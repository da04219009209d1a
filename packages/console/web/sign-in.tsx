import { useState } from "preact/hooks";
import { ConnectError } from "@connectrpc/connect";
import { api, session } from "./rpc.js";
import { ErrorNote } from "./ui.js";

/** The sign-in form: a team token, checked with WhoAmI before it is kept. */
export function SignIn({ message }: { message: string }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<ConnectError | undefined>();
  const [problem, setProblem] = useState("");
  const [busy, setBusy] = useState(false);

  async function submit(event: Event) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    setProblem("");
    try {
      const { token: who } = await api.teams.whoAmI({}, { headers: { authorization: `Bearer ${token.trim()}` } });
      if (!who || who.admin) {
        setProblem("That is an admin token: admin tokens manage teams. Sign in with a team token (berth tokens:create --team NAME).");
        return;
      }
      session.signIn(token.trim());
      if (!location.hash.startsWith("#/apps/")) location.hash = "#/";
    } catch (failure) {
      setError(ConnectError.from(failure));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="sign-in" id="main">
      <h1>berth</h1>
      <form onSubmit={submit} aria-label="Sign in">
        {message && (
          <p class="notice" role="status" data-testid="sign-in-message">
            {message}
          </p>
        )}
        <label for="token">Team token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="off"
          required
          value={token}
          onInput={(event) => setToken(event.currentTarget.value)}
          aria-invalid={error !== undefined || problem !== ""}
        />
        <p class="hint">Kept in this tab's session storage only, until you sign out or close the tab.</p>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {problem && (
          <div class="error" role="alert">
            {problem}
          </div>
        )}
        <ErrorNote error={error} />
      </form>
    </main>
  );
}
