// GraphiQL against this server: queries over HTTP, subscriptions over
// graphql-transport-ws. A token signed in on the console is offered as the
// Authorization header; otherwise paste one under "Headers".
(function () {
  "use strict";
  var token = window.sessionStorage.getItem("rapport.token");
  var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
  var fetcher = window.GraphiQL.createFetcher({
    url: "/graphql",
    subscriptionUrl: scheme + window.location.host + "/graphql/ws",
  });
  var headers = token ? JSON.stringify({ Authorization: "Bearer " + token }, null, 2) : undefined;
  var root = window.ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    window.React.createElement(window.GraphiQL, {
      fetcher: fetcher,
      defaultHeaders: headers,
      defaultQuery: "# Paste your token under Headers as {\"Authorization\": \"Bearer …\"}\n{ me { name role } }\n",
    })
  );
})();
