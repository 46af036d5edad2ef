// GraphiQL against this server: queries over HTTP, subscriptions over
// graphql-transport-ws. A token signed in on the console in this tab is
// sent with every request (never shown on screen); otherwise paste one
// under "Headers".
(function () {
  "use strict";
  var token = window.sessionStorage.getItem("rapport.token");
  var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
  var fetcher = window.GraphiQL.createFetcher({
    url: "/graphql",
    headers: token ? { Authorization: "Bearer " + token } : undefined,
    subscriptionUrl: scheme + window.location.host + "/graphql/ws",
    // Browsers cannot set headers on a WebSocket: the token goes in
    // connection_init, where the server looks for it.
    wsConnectionParams: token ? { Authorization: "Bearer " + token } : undefined,
  });
  var root = window.ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    window.React.createElement(window.GraphiQL, {
      fetcher: fetcher,
      defaultQuery: token
        ? "# Signed in on the console: your token goes with every request.\n{ me { name role } }\n"
        : "# Paste your token under Headers as {\"Authorization\": \"Bearer …\"}\n{ me { name role } }\n",
    })
  );
})();
