import "./console.css";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { AppPage } from "./app-page.js";
import { AppsPage } from "./apps-page.js";
import { liveApps } from "./live.js";
import { api, session } from "./rpc.js";
import { SignIn } from "./sign-in.js";

/** The route in the URL's fragment: `#/` the apps, `#/apps/<name>/<tab>` one app. Never a token. */
function routeOf(hash: string): { app?: string; tab: string } {
  const [, first, app, tab] = hash.replace(/^#/, "").split("/");
  if (first === "apps" && app) return { app: decodeURIComponent(app), tab: tab || "overview" };
  return { tab: "" };
}

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const changed = () => setHash(location.hash);
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return hash;
}

function Console() {
  const [signedIn, setSignedIn] = useState(session.token() !== null);
  const [message, setMessage] = useState("");
  const [team, setTeam] = useState("");
  const hash = useHash();
  useEffect(
    () =>
      session.subscribe((now, why) => {
        if (!now) liveApps.stop();
        setSignedIn(now);
        setMessage(why);
      }),
    [],
  );
  useEffect(() => {
    // Also checks a token kept from before a reload: a revoked one signs out here.
    if (signedIn)
      api.teams.whoAmI({}).then(
        (answer) => setTeam(answer.token?.team ?? ""),
        () => {},
      );
  }, [signedIn]);
  if (!signedIn) return <SignIn message={message} />;
  const route = routeOf(hash);
  return (
    <>
      <header class="bar">
        <a href="#/" class="brand">
          berth
        </a>
        <span class="team" data-testid="team">
          {team}
        </span>
        <button type="button" onClick={() => session.signOut("You signed out.")}>
          Sign out
        </button>
      </header>
      <main id="main">{route.app ? <AppPage key={route.app} name={route.app} tab={route.tab} /> : <AppsPage />}</main>
    </>
  );
}

render(<Console />, document.getElementById("console")!);
