// rapport's console: sign in with a token, find a contact, read their card
// (the gate's verdicts, the score and its history, live), and for managers
// the contact list, violations, campaigns and preflight; customer groups
// for everyone (the group gate, health, silent members). Plain DOM, no
// framework and no build step: every byte is served by rapport itself.
// Text from data is only ever set as text, never parsed as HTML.
(function () {
  "use strict";

  var TOKEN_KEY = "rapport.token";
  var LANG_KEY = "rapport.lang";
  var READERS = ["SALES", "MANAGER", "AUDITOR", "ADMIN"];
  var AUDITORS = ["MANAGER", "AUDITOR", "ADMIN"];
  var UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  var state = {
    token: window.sessionStorage.getItem(TOKEN_KEY),
    me: null,
    lang: chooseLanguage(),
    words: {},
    live: null,
    // The ledger position each verdict on the open card was read at, and
    // the latest card request (an older answer never replaces a newer one).
    cardPositions: {},
    cardSequence: 0,
    // What the open campaign page shows of its alerts and counts.
    campaignShown: null,
    // What the open group page shows of its version and alerts.
    groupShown: null,
    // The last search, shown again when the search page comes back.
    lastSearch: "",
    // The id of the control that keeps the focus through a re-render.
    keepFocus: null,
  };

  function chooseLanguage() {
    var saved = window.localStorage.getItem(LANG_KEY);
    if (saved === "en" || saved === "zh") return saved;
    var preferred = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
    for (var i = 0; i < preferred.length; i++) {
      var tag = String(preferred[i]).toLowerCase();
      if (tag.indexOf("zh") === 0) return "zh";
      if (tag.indexOf("en") === 0) return "en";
    }
    return "en";
  }

  // ---- words ----

  function t(key, values) {
    var text = Object.prototype.hasOwnProperty.call(state.words, key) ? state.words[key] : key;
    if (values) {
      Object.keys(values).forEach(function (name) {
        text = text.split("{" + name + "}").join(String(values[name]));
      });
    }
    return text;
  }

  function loadWords() {
    return fetch("/assets/words/" + state.lang + ".json")
      .then(function (response) { return response.json(); })
      .then(function (words) {
        state.words = words;
        document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
        document.title = t("app.title");
      });
  }

  function locale() {
    return state.lang === "zh" ? "zh-CN" : "en-GB";
  }

  function apiLanguage() {
    return state.lang === "zh" ? "ZH" : "EN";
  }

  // ---- the DOM ----

  function h(tag, attributes, children) {
    var element = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      var value = attributes[name];
      if (value === null || value === undefined || value === false) return;
      if (name === "text") element.textContent = value;
      else if (name === "class") element.className = value;
      else if (name.indexOf("on") === 0) element.addEventListener(name.slice(2), value);
      else element.setAttribute(name, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      element.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return element;
  }

  var SVG = "http://www.w3.org/2000/svg";
  function s(tag, attributes, children) {
    var element = document.createElementNS(SVG, tag);
    Object.keys(attributes || {}).forEach(function (name) {
      element.setAttribute(name, attributes[name]);
    });
    (children || []).forEach(function (child) { element.appendChild(child); });
    return element;
  }

  function main() {
    return document.getElementById("main");
  }

  function show(nodes) {
    var region = main();
    region.replaceChildren.apply(region, nodes);
  }

  /// Moves keyboard and screen-reader focus to the page's heading after a
  /// navigation, and names the page in the title.
  function arrive(heading) {
    if (!heading) return;
    heading.setAttribute("tabindex", "-1");
    document.title = heading.textContent + " · " + t("app.title");
    // After a language switch the switch keeps the focus.
    var kept = state.keepFocus && document.getElementById(state.keepFocus);
    if (kept) kept.focus();
    else heading.focus();
  }

  function announce(text) {
    var status = document.getElementById("announcer");
    status.textContent = "";
    window.setTimeout(function () { status.textContent = text; }, 50);
  }

  function errorBox(error) {
    var message = error && error.network ? t("error.network") : t("error.generic", { message: error.message || String(error) });
    var code = error && error.code ? " " + t("error.code", { code: error.code }) : "";
    return h("p", { class: "error", role: "alert", text: message + code });
  }

  // ---- the API ----

  function gql(query, variables) {
    return fetch("/graphql", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Authorization: "Bearer " + state.token,
        "Accept-Language": state.lang === "zh" ? "zh-CN" : "en",
      },
      body: JSON.stringify({ query: query, variables: variables || {} }),
    })
      .catch(function () { throw { network: true }; })
      .then(function (response) {
        // A proxy in between may answer with a page of its own.
        return response.json().catch(function () {
          throw new Error("HTTP " + response.status);
        }).then(function (body) {
          if (body.errors && body.errors.length) {
            var first = body.errors[0];
            var error = new Error(first.message);
            error.code = first.extensions && first.extensions.code;
            // A token revoked while the page is open: sign in again.
            if (error.code === "UNAUTHENTICATED" && state.me) signOutNow(t("signin.refused"));
            throw error;
          }
          return body.data;
        });
      });
  }

  // ---- formatting ----

  function inZone(iso, zone) {
    var options = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false, timeZone: zone };
    try {
      return new Intl.DateTimeFormat(locale(), options).format(new Date(iso));
    } catch (invalidZone) {
      options.timeZone = "UTC";
      return new Intl.DateTimeFormat(locale(), options).format(new Date(iso)) + " UTC";
    }
  }

  function hoursText(hours) {
    return hours.map(function (hour) { return (hour < 10 ? "0" : "") + hour + ":00"; }).join(", ");
  }

  function percent(rate) {
    return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 1 }).format(rate);
  }

  /// A rate the API gives per thousand, as a percentage with one decimal.
  function perMille(value) {
    return new Intl.NumberFormat(locale(), { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(value / 1000);
  }

  /// The end of an id (the start of ours is a time or zeros): enough to
  /// tell contacts apart in a list where the ledger names nobody.
  function shortId(id) {
    return "…" + id.slice(-12);
  }

  function eventLabel(point) {
    if (point.eventType === "TouchRecorded") return t("event.TouchRecorded." + (point.sendMode || "MASS"));
    if (point.eventType === "now") return t("card.now");
    return t("event." + point.eventType);
  }

  // ---- the frame: header, navigation, language ----

  function renderFrame() {
    var header = document.getElementById("header");
    var nav = [];
    var role = state.me && state.me.role;
    if (role && READERS.indexOf(role) >= 0) {
      var page = currentRoute().page;
      [["", "nav.find"], ["contacts", "nav.contacts"], ["campaigns", "nav.campaigns"], ["groups", "nav.groups"], ["preflight", "nav.preflight"]].forEach(function (item) {
        // A campaign's or a group's page is under its list.
        var here = page === item[0] || ((page === "campaign" || page === "group") && item[0] === page + "s");
        nav.push(h("a", { href: "#/" + item[0], "aria-current": here ? "page" : null, text: t(item[1]) }));
      });
    }
    if (state.me) nav.push(h("a", { href: "/graphql", text: t("nav.graphiql") }));
    var who = state.me
      ? h("span", { class: "who", id: "who", text: t("me", { name: state.me.name, role: t("role." + state.me.role) }) })
      : null;
    var signOut = state.me ? h("button", { type: "button", class: "quiet", onclick: signOutNow, text: t("signout") }) : null;
    // The visible word is in the other language; the hidden one says what
    // the button does in this one.
    var switcher = h("button", { type: "button", class: "quiet", id: "language", onclick: switchLanguage }, [
      h("span", { lang: state.lang === "zh" ? "en" : "zh-CN", text: t("lang.switch") }),
      h("span", { class: "visually-hidden", text: " · " + t("lang.switchLabel") }),
    ]);
    header.replaceChildren(
      h("a", { href: "#/", class: "brand", text: t("app.title") }),
      nav.length ? h("nav", { "aria-label": t("nav.label") }, nav) : h("span", { class: "tagline", text: t("app.tagline") }),
      h("div", { class: "session" }, [who, signOut, switcher])
    );
  }

  function switchLanguage() {
    state.lang = state.lang === "zh" ? "en" : "zh";
    window.localStorage.setItem(LANG_KEY, state.lang);
    state.keepFocus = "language";
    loadWords().then(function () {
      route();
      document.getElementById("language").focus();
      window.setTimeout(function () { state.keepFocus = null; }, 3000);
    });
  }

  function signOutNow(why) {
    window.sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    state.me = null;
    state.lastSearch = "";
    stopLive();
    window.location.hash = "#/";
    renderFrame();
    renderSignIn(typeof why === "string" ? why : undefined);
  }

  // ---- sign-in ----

  function renderSignIn(problem) {
    var input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true, "aria-describedby": "token-help" });
    var form = h("form", { class: "panel signin", onsubmit: function (event) {
      event.preventDefault();
      signIn(input.value.trim());
    } }, [
      h("h1", { text: t("signin.heading") }),
      h("label", { for: "token", text: t("signin.token") }),
      input,
      h("p", { id: "token-help", class: "help", text: t("signin.help") }),
      problem ? h("p", { class: "error", role: "alert", text: problem }) : null,
      h("button", { type: "submit", text: t("signin.submit") }),
    ]);
    show([form]);
    input.focus();
  }

  function signIn(token) {
    state.token = token;
    gql("{ me { name role } }")
      .then(function (data) {
        state.me = data.me;
        window.sessionStorage.setItem(TOKEN_KEY, token);
        route();
      })
      .catch(function (error) {
        if (error.code === "UNAUTHENTICATED") {
          state.token = null;
          window.sessionStorage.removeItem(TOKEN_KEY);
          renderSignIn(t("signin.refused"));
          return;
        }
        // The server could not be asked: keep the token and offer to try again.
        show([errorBox(error), h("button", { type: "button", onclick: function () { signIn(token); }, text: t("error.retry") })]);
      });
  }

  // ---- finding a contact ----

  var searchTimer = null;
  var searchSequence = 0;

  function renderFind() {
    var results = h("div", { id: "results" });
    var input = h("input", {
      id: "search",
      type: "search",
      maxlength: "100",
      value: state.lastSearch || "",
      autocomplete: "off",
      placeholder: t("search.placeholder"),
      "aria-describedby": "search-hint",
      oninput: function () {
        window.clearTimeout(searchTimer);
        searchTimer = window.setTimeout(function () { search(input.value.trim(), results); }, 200);
      },
    });
    show([
      h("section", { class: "panel find" }, [
        h("h1", { text: t("nav.find") }),
        h("label", { for: "search", text: t("search.label") }),
        input,
        h("p", { id: "search-hint", class: "help", text: t("search.hint") }),
        results,
      ]),
    ]);
    input.focus();
    // Back from a card, or after a language switch: the same results.
    if (input.value) search(input.value.trim(), results);
  }

  function search(text, results) {
    var sequence = ++searchSequence;
    state.lastSearch = text;
    if (text.length < 2) {
      results.replaceChildren();
      return;
    }
    gql("query($q: String!) { contacts(search: $q, first: 20) { pageInfo { hasNextPage } nodes { id displayName owner status } } }", { q: text })
      .then(function (data) {
        if (sequence !== searchSequence) return;
        var found = data.contacts.nodes;
        if (!found.length) {
          results.replaceChildren(h("p", { text: t("search.none", { q: text }) }));
          announce(t("search.none", { q: text }));
          return;
        }
        var count = data.contacts.pageInfo.hasNextPage ? t("search.more", { n: found.length }) : t("search.results", { n: found.length });
        announce(count);
        results.replaceChildren(
          h("p", { class: "help", text: count }),
          h("ul", { class: "results" }, found.map(function (contact) {
            return h("li", {}, [
              h("a", { href: "#/contact/" + contact.id }, [
                h("span", { class: "name", text: contact.displayName || contact.id }),
                h("span", { class: "meta", text: contact.owner + " · " + t("status." + contact.status) }),
              ]),
            ]);
          }))
        );
      })
      .catch(function (error) {
        if (sequence === searchSequence) results.replaceChildren(errorBox(error));
      });
  }

  // ---- the contact card ----

  var GATE = "verdict allowed nextAllowedAt bestSendHours reasons { code blocking message(lang: $lang) } position";
  var CARD = "query($id: UUID!, $lang: Language) { contact(id: $id) { id displayName owner tags timeZone primaryChannel status version " +
    "mass: gate(mode: MASS) { " + GATE + " } chat: gate(mode: ONE_TO_ONE) { " + GATE + " } " +
    "strength { score band components { name points explanation(lang: $lang) } } " +
    "scoreHistory(last: 100) { occurredAt eventType sendMode score band violation } } }";

  function renderContact(id) {
    show([h("p", { class: "loading", text: t("card.loading") })]);
    state.cardPositions = {};
    loadCard(id, false);
    followCard(id);
  }

  function stillOn(page, id) {
    var where = currentRoute();
    return where.page === page && where.id === id;
  }

  /// A page whose subject does not exist or is not the reader's to see.
  function notFound(key) {
    stopLive();
    var box = h("p", { class: "error", role: "alert", id: "not-found", tabindex: "-1", text: t(key) });
    show([box]);
    box.focus();
  }

  function notYours() {
    notFound("card.notFound");
  }

  function loadCard(id, update) {
    var sequence = ++state.cardSequence;
    return gql(CARD, { id: id, lang: apiLanguage() })
      .then(function (data) {
        if (!stillOn("contact", id) || sequence !== state.cardSequence) return;
        if (!data.contact) {
          notYours();
          return;
        }
        state.cardPositions = { MASS: data.contact.mass.position, ONE_TO_ONE: data.contact.chat.position };
        var previous = document.querySelector(".card");
        var scroll = window.scrollY;
        var focused = document.activeElement && document.activeElement.id;
        show([card(data.contact)]);
        if (update && previous) {
          window.scrollTo(0, scroll);
          var again = focused && document.getElementById(focused);
          if (again) again.focus();
          var last = data.contact.scoreHistory[data.contact.scoreHistory.length - 1];
          announce(t("card.updated", { what: last ? eventLabel(last) : "" }));
        } else {
          arrive(document.getElementById("contact-name"));
        }
        setLiveMark();
      })
      .catch(function (error) {
        if (!stillOn("contact", id) || sequence !== state.cardSequence) return;
        if (error.code === "NOT_FOUND" || error.code === "FORBIDDEN") {
          notYours();
          return;
        }
        show([errorBox(error)]);
      });
  }

  /// One reload for news that comes together (both of a card's verdicts).
  function reloadSoon(reload) {
    if (state.live) {
      window.clearTimeout(state.live.reload);
      state.live.reload = window.setTimeout(reload, 150);
    }
  }

  /// One gate's answer: `zone` is the clock its next allowed moment is
  /// told on, in the words of `nextKey`.
  function verdictBox(title, gate, zone, id, nextKey) {
    var reasons = gate.reasons.length
      ? h("ul", { class: "reasons" }, gate.reasons.map(function (reason) {
          return h("li", { class: reason.blocking ? "blocking" : "warning", "data-code": reason.code }, [
            h("span", { class: "mark", text: reason.blocking ? t("card.blocking") : t("card.warning") }),
            " ",
            reason.message,
          ]);
        }))
      : h("p", { class: "reasons-none", text: t("card.noReasons") });
    var next = gate.nextAllowedAt
      ? h("p", { class: "next", text: t(nextKey || "card.nextAllowed", { when: inZone(gate.nextAllowedAt, zone) }) })
      : null;
    return h("section", { class: "verdict verdict-" + gate.verdict.toLowerCase(), id: id, "aria-labelledby": id + "-title" }, [
      h("h2", { id: id + "-title", class: "verdict-mode", text: title }),
      h("p", { class: "verdict-word", "data-verdict": gate.verdict, text: t("verdict." + gate.verdict) }),
      next,
      reasons,
    ]);
  }

  function card(contact) {
    var strength = contact.strength;
    var hours = contact.mass.bestSendHours;
    return h("article", { class: "card", "aria-labelledby": "contact-name" }, [
      h("header", { class: "card-head" }, [
        h("h1", { id: "contact-name", text: contact.displayName || contact.id }),
        h("p", { class: "status status-" + contact.status.toLowerCase(), text: t("status." + contact.status) }),
        h("dl", { class: "facts" }, [
          h("dt", { text: t("card.owner") }), h("dd", { text: contact.owner }),
          h("dt", { text: t("card.channel") }), h("dd", { text: contact.primaryChannel }),
          h("dt", { text: t("card.timeZone") }), h("dd", { text: contact.timeZone }),
          h("dt", { text: t("card.tags") }), h("dd", { text: contact.tags.join(", ") || "—" }),
        ]),
      ]),
      h("div", { class: "verdicts" }, [
        verdictBox(t("card.mass"), contact.mass, contact.timeZone, "mass"),
        verdictBox(t("card.chat"), contact.chat, contact.timeZone, "chat"),
      ]),
      h("section", { class: "panel", "aria-labelledby": "hours-title" }, [
        h("h2", { id: "hours-title", text: t("card.bestHours") }),
        h("p", { id: "best-hours", text: hours.length ? hoursText(hours) : t("card.bestHoursUnknown") }),
      ]),
      h("section", { class: "panel", "aria-labelledby": "strength-title" }, [
        h("h2", { id: "strength-title", text: t("card.strength") }),
        h("p", { class: "score" }, [
          h("span", { class: "score-value", id: "score", text: String(strength.score) }),
          h("span", { class: "score-of", text: "/100 · " + t("band." + strength.band) }),
        ]),
        componentsTable(strength.components),
      ]),
      h("section", { class: "panel", "aria-labelledby": "chart-title" }, [
        h("h2", { id: "chart-title", text: t("card.chart") }),
        chart(contact.scoreHistory.concat([{ occurredAt: new Date().toISOString(), eventType: "now", score: strength.score }]), contact.timeZone),
      ]),
      h("section", { class: "panel", "aria-labelledby": "timeline-title" }, [
        h("h2", { id: "timeline-title", text: t("card.timeline") }),
        timeline(contact.scoreHistory, contact.timeZone),
      ]),
      h("p", { class: "live", id: "live" }),
    ]);
  }

  function componentsTable(components) {
    return h("table", { class: "components" }, [
      h("caption", { text: t("card.components") }),
      h("thead", {}, [h("tr", {}, [
        h("th", { scope: "col", text: t("card.component") }),
        h("th", { scope: "col", class: "number", text: t("card.points") }),
        h("th", { scope: "col", text: t("card.why") }),
      ])]),
      h("tbody", {}, components.map(function (component) {
        return h("tr", {}, [
          h("th", { scope: "row", text: t("component." + component.name) }),
          h("td", { class: "number " + (component.points < 0 ? "negative" : ""), text: (component.points > 0 ? "+" : "") + component.points }),
          h("td", { text: component.explanation }),
        ]);
      })),
    ]);
  }

  function markerKind(point) {
    if (point.violation) return "violation";
    if (point.eventType === "ReplyReceived") return "reply";
    if (point.eventType === "ContactDeletedUs" || point.eventType === "ContactBlocked") return "loss";
    if (point.eventType === "TouchRecorded") return "touch";
    return null;
  }

  function chart(points, zone) {
    if (!points.length) return h("p", { text: t("card.chartEmpty") });
    var width = 640, height = 180, left = 34, right = 10, top = 10, bottom = 24;
    var times = points.map(function (point) { return Date.parse(point.occurredAt); });
    var first = times[0], last = times[times.length - 1];
    var span = Math.max(last - first, 1);
    var x = function (time) { return left + (width - left - right) * (points.length === 1 ? 0.5 : (time - first) / span); };
    var y = function (score) { return top + (height - top - bottom) * (1 - score / 100); };
    var grid = [0, 50, 100].map(function (score) {
      return s("g", {}, [
        s("line", { x1: left, x2: width - right, y1: y(score), y2: y(score), class: "grid" }),
        s("text", { x: left - 6, y: y(score) + 4, class: "axis", "text-anchor": "end" }, [document.createTextNode(String(score))]),
      ]);
    });
    var line = s("polyline", {
      class: "score-line",
      points: points.map(function (point, i) { return x(times[i]).toFixed(1) + "," + y(point.score).toFixed(1); }).join(" "),
    });
    var markers = points.map(function (point, i) {
      var kind = markerKind(point);
      if (!kind) return null;
      var cx = x(times[i]), cy = y(point.score);
      var shape = kind === "loss"
        ? s("path", { d: "M" + (cx - 5) + "," + (cy - 5) + "L" + (cx + 5) + "," + (cy + 5) + "M" + (cx + 5) + "," + (cy - 5) + "L" + (cx - 5) + "," + (cy + 5) })
        : kind === "touch"
          ? s("rect", { x: cx - 3.5, y: cy - 3.5, width: 7, height: 7 })
          : s("circle", { cx: cx, cy: cy, r: kind === "violation" ? 7 : 4 });
      var marker = s("g", { class: "marker marker-" + kind }, [shape]);
      marker.appendChild(s("title", {}, [document.createTextNode(inZone(point.occurredAt, zone) + " · " + eventLabel(point) + " · " + point.score)]));
      return marker;
    }).filter(Boolean);
    var axis = [
      s("text", { x: left, y: height - 6, class: "axis" }, [document.createTextNode(inZone(points[0].occurredAt, zone))]),
      s("text", { x: width - right, y: height - 6, class: "axis", "text-anchor": "end" }, [document.createTextNode(inZone(points[points.length - 1].occurredAt, zone))]),
    ];
    var svg = s("svg", { viewBox: "0 0 " + width + " " + height, class: "chart", role: "img", "aria-labelledby": "chart-title chart-summary" },
      grid.concat([line], markers, axis));
    var summary = h("p", { id: "chart-summary", class: "visually-hidden",
      text: points.map(function (point) { return eventLabel(point) + " " + point.score; }).slice(-10).join("; ") });
    var legend = h("ul", { class: "legend" }, ["reply", "touch", "loss", "violation"].map(function (kind) {
      return h("li", { class: "legend-" + kind, text: t("legend." + kind) });
    }));
    return h("figure", { class: "chart-box" }, [svg, summary, legend]);
  }

  function timeline(points, zone) {
    if (!points.length) return h("p", { text: t("card.chartEmpty") });
    return h("table", { class: "timeline" }, [
      h("thead", {}, [h("tr", {}, [
        h("th", { scope: "col", text: t("card.when") }),
        h("th", { scope: "col", text: t("card.event") }),
        h("th", { scope: "col", class: "number", text: t("card.scoreAfter") }),
      ])]),
      h("tbody", {}, points.slice().reverse().map(function (point) {
        return h("tr", { class: point.violation ? "violation" : null }, [
          h("td", { text: inZone(point.occurredAt, zone) }),
          h("td", {}, [eventLabel(point), point.violation ? h("span", { class: "badge", text: t("card.violation") }) : null]),
          h("td", { class: "number", text: String(point.score) }),
        ]);
      })),
    ]);
  }

  // ---- live updates over graphql-transport-ws ----

  function stopLive() {
    if (state.live) {
      state.live.stopped = true;
      window.clearTimeout(state.live.retry);
      window.clearTimeout(state.live.reload);
      window.clearInterval(state.live.heartbeat);
      if (state.live.socket) state.live.socket.close(1000);
      state.live = null;
    }
  }

  function setLiveMark() {
    var mark = document.getElementById("live");
    if (!mark || !state.live) return;
    mark.textContent = state.live.open ? t("card.live") : t("card.offline");
    mark.className = "live " + (state.live.open ? "live-on" : "live-off");
  }

  /// Follows the open page over one WebSocket: `subscriptions` are
  /// `{ id, query, variables }`; `onNext(id, data)` hears each answer.
  function startLive(subscriptions, onNext) {
    stopLive();
    var live = { subscriptions: subscriptions, onNext: onNext, open: false, stopped: false, backoff: 1000 };
    state.live = live;
    connect(live);
  }

  var GATE_CHANGED = "subscription($id: UUID!, $mode: SendMode!) { gateChanged(contactId: $id, mode: $mode) { verdict position } }";

  function followCard(id) {
    var subscriptions = ["MASS", "ONE_TO_ONE"].map(function (mode) {
      return { id: mode, query: GATE_CHANGED, variables: { id: id, mode: mode } };
    });
    startLive(subscriptions, function (mode, data) {
      // Each answer carries the position it was decided at: one the card
      // was not read at is news (also what happened while reconnecting).
      var decided = data && data.gateChanged;
      if (decided && decided.position !== state.cardPositions[mode]) reloadSoon(function () { loadCard(id, true); });
    });
  }

  function connect(live) {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/graphql/ws", "graphql-transport-ws");
    live.socket = socket;
    var acked = false;
    socket.onopen = function () {
      socket.send(JSON.stringify({ type: "connection_init", payload: { Authorization: "Bearer " + state.token } }));
    };
    // A connection can die without a close (a laptop lid, a Wi-Fi change):
    // a ping unanswered by the next one means it has, so start again.
    var unanswered = false;
    live.heartbeat = window.setInterval(function () {
      if (unanswered) {
        reconnectNow(live);
        return;
      }
      unanswered = true;
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
    }, HEARTBEAT_MS);
    socket.onmessage = function (message) {
      var frame = JSON.parse(message.data);
      unanswered = false;
      if (frame.type === "connection_ack") {
        acked = true;
        live.open = true;
        live.backoff = 1000;
        setLiveMark();
        live.subscriptions.forEach(function (subscription) {
          socket.send(JSON.stringify({ id: subscription.id, type: "subscribe", payload: { query: subscription.query, variables: subscription.variables } }));
        });
      } else if (frame.type === "ping") {
        socket.send(JSON.stringify({ type: "pong" }));
      } else if (frame.type === "next") {
        live.onNext(frame.id, frame.payload && frame.payload.data);
      } else if (frame.type === "error" || frame.type === "complete") {
        live.open = false;
        setLiveMark();
      }
    };
    socket.onclose = function (closed) {
      live.open = false;
      window.clearInterval(live.heartbeat);
      if (live.stopped) return;
      // 4401/4403: the token is no longer accepted; signing in again is the way on.
      if (closed.code === 4401 || closed.code === 4403) {
        signOutNow(t("signin.refused"));
        return;
      }
      // Refused before it was accepted: if the token is the reason, asking
      // the API signs out (see gql).
      if (!acked) gql("{ me { name } }").catch(function () {});
      setLiveMark();
      live.retry = window.setTimeout(function () { if (!live.stopped) connect(live); }, live.backoff);
      live.backoff = Math.min(live.backoff * 2, 30000);
    };
  }

  var HEARTBEAT_MS = 15000;

  /// Drops the connection without waiting for its close, and opens another.
  function reconnectNow(live) {
    window.clearInterval(live.heartbeat);
    window.clearTimeout(live.retry);
    if (live.socket) {
      live.socket.onclose = null;
      live.socket.onmessage = null;
      live.socket.close();
    }
    live.open = false;
    setLiveMark();
    if (!live.stopped) connect(live);
  }

  window.addEventListener("online", function () {
    if (state.live && !state.live.stopped) reconnectNow(state.live);
  });
  window.addEventListener("offline", function () {
    if (state.live) {
      state.live.open = false;
      setLiveMark();
    }
  });

  // ---- managers: contacts, violations ----

  var BANDS = ["STRONG", "WARM", "COOL", "COLD", "LOST"];

  function renderContacts(query) {
    var band = h("select", { id: "band", name: "band" }, [h("option", { value: "", text: t("contacts.any") })].concat(BANDS.map(function (b) {
      return h("option", { value: b, selected: query.band === b, text: t("band." + b) });
    })));
    var owner = h("input", { id: "owner", name: "owner", type: "text", value: query.owner || "" });
    var list = h("div", { id: "contact-list" });
    var form = h("form", { class: "filters", onsubmit: function (event) {
      event.preventDefault();
      var params = new URLSearchParams();
      if (band.value) params.set("band", band.value);
      if (owner.value.trim()) params.set("owner", owner.value.trim());
      window.location.hash = "#/contacts" + (params.toString() ? "?" + params.toString() : "");
    } }, [
      h("label", { for: "band", text: t("contacts.band") }), band,
      h("label", { for: "owner", text: t("contacts.owner") }), owner,
      h("button", { type: "submit", text: t("contacts.filter") }),
    ]);
    var sections = [h("section", { class: "panel" }, [h("h1", { text: t("contacts.heading") }), form, list])];
    if (AUDITORS.indexOf(state.me.role) >= 0) {
      var violations = h("div", { id: "violations" });
      sections.push(h("section", { class: "panel" }, [h("h2", { text: t("violations.heading") }), violations]));
      loadViolations(violations);
    }
    show(sections);
    loadContacts(list, query, null);
  }

  function loadContacts(list, query, after) {
    var variables = { band: query.band || null, owner: query.owner || null, after: after };
    gql("query($band: Band, $owner: String, $after: String) { contacts(first: 25, band: $band, owner: $owner, after: $after) { " +
      "pageInfo { hasNextPage endCursor } nodes { id displayName owner status gate(mode: MASS) { verdict score band } } } }", variables)
      .then(function (data) {
        var rows = data.contacts.nodes.map(function (contact) {
          return h("tr", {}, [
            h("th", { scope: "row" }, [h("a", { href: "#/contact/" + contact.id, text: contact.displayName || contact.id })]),
            h("td", { text: contact.owner }),
            h("td", { class: "number", text: contact.gate.score + " · " + t("band." + contact.gate.band) }),
            h("td", { text: t("status." + contact.status) }),
            h("td", {}, [h("span", { class: "pill pill-" + contact.gate.verdict.toLowerCase(), text: t("verdict." + contact.gate.verdict) })]),
          ]);
        });
        addPage(list, t("contacts.heading"), ["contacts.name", "contacts.owner", "contacts.score", "contacts.status", "contacts.mass"], rows,
          data.contacts.pageInfo, function (after) { loadContacts(list, query, after); });
      })
      .catch(function (error) { pageFailed(list, error); });
  }

  /// Adds a page of rows to a list's table, made with the first page, and
  /// offers the next page while there is one.
  function addPage(list, label, columns, rows, pageInfo, loadMore) {
    var table = list.querySelector("tbody");
    if (!table) {
      // Wider than a sidebar: it scrolls on its own, not the page.
      list.appendChild(h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": label }, [h("table", { class: "list" }, [
        h("thead", {}, [h("tr", {}, columns.map(function (key) {
          return h("th", { scope: "col", text: t(key) });
        }))]),
        h("tbody", {}, rows),
      ])]));
    } else {
      rows.forEach(function (row) { table.appendChild(row); });
      var firstNew = rows.length && rows[0].querySelector("a");
      if (firstNew) firstNew.focus();
    }
    var more = list.querySelector("button.more");
    if (more) more.remove();
    if (pageInfo.hasNextPage) {
      list.appendChild(h("button", { type: "button", class: "more", text: t("contacts.more"), onclick: function (event) {
        event.currentTarget.disabled = true;
        loadMore(pageInfo.endCursor);
      } }));
    }
  }

  function pageFailed(list, error) {
    var more = list.querySelector("button.more");
    if (more) more.remove();
    list.appendChild(errorBox(error));
  }

  function loadViolations(box) {
    gql("{ violations(first: 20) { nodes { occurredAt actor contactId violation { verdict reasonCodes } } } }")
      .then(function (data) {
        var found = data.violations.nodes;
        if (!found.length) {
          box.replaceChildren(h("p", { text: t("violations.none") }));
          return;
        }
        box.replaceChildren(h("table", { class: "list" }, [
          h("thead", {}, [h("tr", {}, ["violations.when", "violations.who", "contacts.name", "violations.why"].map(function (key) {
            return h("th", { scope: "col", text: t(key) });
          }))]),
          h("tbody", {}, found.map(function (event) {
            return h("tr", {}, [
              h("td", { text: new Date(event.occurredAt).toLocaleString(locale()) }),
              h("td", { text: event.actor }),
              h("td", {}, [h("a", { href: "#/contact/" + event.contactId, text: shortId(event.contactId) })]),
              h("td", { text: t("verdict." + event.violation.verdict) + " · " + event.violation.reasonCodes.map(function (code) { return t("reasonName." + code); }).join(t("list.separator")) }),
            ]);
          })),
        ]));
      })
      .catch(function (error) { box.replaceChildren(errorBox(error)); });
  }

  // ---- campaigns ----

  function renderCampaigns() {
    var box = h("div", { id: "campaign-list" });
    show([h("section", { class: "panel" }, [h("h1", { text: t("campaigns.heading") }), box])]);
    gql("{ campaigns(first: 50) { nodes { id name startedAt sent { contacts lossRate } alerts { kind } } } }")
      .then(function (data) {
        var found = data.campaigns.nodes;
        if (!found.length) {
          box.replaceChildren(h("p", { text: t("campaigns.none") }));
          return;
        }
        box.replaceChildren(h("table", { class: "list" }, [
          h("thead", {}, [h("tr", {}, ["campaigns.name", "campaigns.started", "campaigns.sent", "campaigns.lost", "campaigns.alerts"].map(function (key) {
            return h("th", { scope: "col", text: t(key) });
          }))]),
          h("tbody", {}, found.map(function (campaign) {
            return h("tr", { class: campaign.alerts.length ? "alerting" : null }, [
              h("th", { scope: "row" }, [h("a", { href: "#/campaign/" + campaign.id, text: campaign.name || t("campaign.unnamed") })]),
              h("td", { text: campaign.startedAt ? new Date(campaign.startedAt).toLocaleString(locale()) : "—" }),
              h("td", { class: "number", text: String(campaign.sent.contacts) }),
              h("td", { class: "number", text: percent(campaign.sent.lossRate) }),
              h("td", { text: campaign.alerts.map(function (alert) { return t("alertName." + alert.kind); }).join(", ") || "—" }),
            ]);
          })),
        ]));
      })
      .catch(function (error) { box.replaceChildren(errorBox(error)); });
  }

  var OUTCOMES = ["replied", "deletedUs", "blocked", "complained", "optedOut"];

  var OUTCOME_FIELDS = "contacts replied deletedUs blocked complained optedOut";
  var CAMPAIGN_ALERTS = "subscription($id: UUID!) { campaignAlerts(campaignId: $id) { alerts { kind } sent { " + OUTCOME_FIELDS + " } } }";

  /// What a campaign page shows that its alerts subscription also tells.
  function campaignNews(campaign) {
    return JSON.stringify([campaign.alerts.map(function (alert) { return alert.kind; }), OUTCOME_FIELDS.split(" ").map(function (field) { return campaign.sent[field]; })]);
  }

  function renderCampaign(id) {
    show([h("p", { class: "loading", text: t("card.loading") })]);
    state.campaignShown = null;
    loadCampaign(id, false);
    startLive([{ id: "alerts", query: CAMPAIGN_ALERTS, variables: { id: id } }], function (_, data) {
      var now = data && data.campaignAlerts;
      if (now && state.campaignShown !== null && campaignNews(now) !== state.campaignShown) {
        reloadSoon(function () { loadCampaign(id, true); });
      }
    });
  }

  function loadCampaign(id, update) {
    gql("query($id: UUID!) { campaign(id: $id) { id name mode startedAt lossRateDifference sent { " + OUTCOME_FIELDS + " } holdout { " + OUTCOME_FIELDS + " } " +
      "alerts { kind rate threshold } deletedAfter(first: 100) { contactId displayName loss at heldOut scoreBefore bandBefore } } }", { id: id })
      .then(function (data) {
        if (!stillOn("campaign", id)) return;
        var campaign = data.campaign;
        state.campaignShown = campaignNews(campaign);
        var alerts = campaign.alerts.map(function (alert) {
          return h("p", { class: "alert", role: "status", text: t("alert." + alert.kind, { rate: percent(alert.rate), threshold: percent(alert.threshold) }) });
        });
        var lost = campaign.deletedAfter.length
          ? h("table", { class: "list" }, [
              h("thead", {}, [h("tr", {}, ["contacts.name", "campaign.outcome", "violations.when", "campaign.scoreBefore"].map(function (key) {
                return h("th", { scope: "col", text: t(key) });
              }))]),
              h("tbody", {}, campaign.deletedAfter.map(function (loss) {
                return h("tr", {}, [
                  h("th", { scope: "row" }, [h("a", { href: "#/contact/" + loss.contactId, text: loss.displayName || shortId(loss.contactId) })]),
                  h("td", { text: t(loss.loss === "BLOCKED" ? "campaign.blocked" : "campaign.deletedUs") + (loss.heldOut ? " · " + t("campaign.holdoutGroup") : "") }),
                  h("td", { text: new Date(loss.at).toLocaleString(locale()) }),
                  h("td", { class: "number", text: loss.scoreBefore + " · " + t("band." + loss.bandBefore) }),
                ]);
              })),
            ])
          : h("p", { text: t("campaign.noneLost") });
        show([h("article", { class: "panel campaign" }, [
          h("h1", { text: campaign.name || t("campaign.unnamed") }),
          h("p", { class: "help", text: (campaign.startedAt ? new Date(campaign.startedAt).toLocaleString(locale()) : "") + " · " + t(campaign.mode === "MASS" ? "card.mass" : "card.chat") }),
        ].concat(alerts, [
          h("h2", { text: t("campaign.aftermath") }),
          outcomesChart(campaign),
          h("p", { text: t("campaign.lossDifference", { value: percent(campaign.lossRateDifference) }) }),
          h("h2", { text: t("campaign.lostList") }),
          lost,
          h("p", { class: "live", id: "live" }),
        ]))]);
        setLiveMark();
        if (update) announce(alerts.length ? alerts.map(function (alert) { return alert.textContent; }).join(" ") : t("campaign.aftermath"));
        else arrive(main().querySelector("h1"));
      })
      .catch(function (error) {
        if (!stillOn("campaign", id)) return;
        if (error.code === "NOT_FOUND") campaignNotFound();
        else show([errorBox(error)]);
      });
  }

  function campaignNotFound() {
    notFound("campaign.notFound");
  }

  function outcomesChart(campaign) {
    var rate = function (group, outcome) { return group.contacts ? group[outcome] / group.contacts : 0; };
    var peak = Math.max(0.01, Math.max.apply(null, OUTCOMES.map(function (o) { return Math.max(rate(campaign.sent, o), rate(campaign.holdout, o)); })));
    var bar = function (group, outcome, kind) {
      var value = rate(group, outcome);
      var fill = h("span", { class: "bar-fill bar-" + kind });
      fill.style.width = (100 * value / peak).toFixed(1) + "%";
      return h("span", { class: "bar" }, [fill, h("span", { class: "bar-value", text: group[outcome] + " · " + percent(value) })]);
    };
    return h("table", { class: "outcomes" }, [
      h("thead", {}, [h("tr", {}, [
        h("th", { scope: "col", text: t("campaign.outcome") }),
        h("th", { scope: "col", text: t("campaign.sentGroup") + " (" + campaign.sent.contacts + ")" }),
        h("th", { scope: "col", text: t("campaign.holdoutGroup") + " (" + campaign.holdout.contacts + ")" }),
      ])]),
      h("tbody", {}, OUTCOMES.map(function (outcome) {
        return h("tr", {}, [
          h("th", { scope: "row", text: t("campaign." + outcome) }),
          h("td", {}, [bar(campaign.sent, outcome, "sent")]),
          h("td", {}, [bar(campaign.holdout, outcome, "holdout")]),
        ]);
      })),
    ]);
  }

  // ---- customer groups ----

  var POST_KINDS = ["CONTENT", "INTERACTION", "PROMOTION"];

  function renderGroups() {
    var list = h("div", { id: "group-list" });
    show([h("section", { class: "panel" }, [h("h1", { text: t("groups.heading") }), list])]);
    loadGroups(list, null);
  }

  // 25 a page: each row's health costs a fold (50) of the 2,000 the API
  // allows a query, so a page of 100 would be refused.
  var GROUPS = "query($after: String) { groups(first: 25, after: $after) { pageInfo { hasNextPage endCursor } " +
    "nodes { id name owner kind health { members leaveRatePerMille postsToday postsPerDayCap alerts } } } }";

  function loadGroups(list, after) {
    gql(GROUPS, { after: after })
      .then(function (data) {
        var found = data.groups.nodes;
        if (!found.length && !after) {
          list.replaceChildren(h("p", { text: t("groups.none") }));
          return;
        }
        var rows = found.map(function (group) {
          var health = group.health;
          return h("tr", { class: health.alerts.length ? "alerting" : null }, [
            h("th", { scope: "row" }, [
              h("a", { href: "#/group/" + group.id, text: group.name }),
              h("span", { class: "meta", text: group.kind }),
            ]),
            h("td", { text: group.owner }),
            h("td", { class: "number", text: String(health.members) }),
            h("td", { class: "number", text: perMille(health.leaveRatePerMille) }),
            h("td", { class: "number", text: t("group.postsOfCap", { n: health.postsToday, cap: health.postsPerDayCap }) }),
            h("td", {}, health.alerts.length ? health.alerts.map(function (kind) {
              return h("span", { class: "badge", "data-alert": kind, text: t("groupAlertName." + kind) });
            }) : ["—"]),
          ]);
        });
        addPage(list, t("groups.heading"), ["groups.name", "card.owner", "groups.members", "groups.leaveRate", "groups.postsToday", "groups.alerts"], rows,
          data.groups.pageInfo, function (next) { loadGroups(list, next); });
      })
      .catch(function (error) { pageFailed(list, error); });
  }

  var GROUP_GATE = "verdict nextAllowedAt reasons { code blocking message(lang: $lang) }";
  var GROUP = "query($id: UUID!, $lang: Language) { group(id: $id) { id name owner kind timeZone archivedAt version " +
    "health { members windowDays joined left removed leaveRatePerMille activeMembers postsToday postsPerDayCap " +
    "mix { content interaction promotion } alerts } " +
    POST_KINDS.map(function (kind) { return kind.toLowerCase() + ": gate(kind: " + kind + ") { " + GROUP_GATE + " }"; }).join(" ") +
    " posts(last: 20) { at kind membersLeftWithinADay } " +
    "silentMembers(first: 50) { member silentDays nudge mayBeGreeted contact { id displayName } contactGate { verdict } } } }";
  var GROUP_ALERTS = "subscription($id: UUID!) { groupAlerts(groupId: $id) { version health { alerts } } }";

  /// What a group page shows that its alerts subscription also tells: a
  /// version the page was not read at is news too (what happened while
  /// the page was loading, or reconnecting).
  function groupNews(group) {
    return JSON.stringify([group.version, group.health.alerts]);
  }

  var groupSequence = 0;

  function renderGroup(id) {
    show([h("p", { class: "loading", text: t("card.loading") })]);
    state.groupShown = null;
    loadGroup(id, false);
    startLive([{ id: "alerts", query: GROUP_ALERTS, variables: { id: id } }], function (_, data) {
      var now = data && data.groupAlerts;
      if (now && state.groupShown !== null && groupNews(now) !== state.groupShown) {
        reloadSoon(function () { loadGroup(id, true); });
      }
    });
  }

  function loadGroup(id, update) {
    var sequence = ++groupSequence;
    gql(GROUP, { id: id, lang: apiLanguage() })
      .then(function (data) {
        if (!stillOn("group", id) || sequence !== groupSequence) return;
        var group = data.group;
        if (!group) {
          groupNotFound();
          return;
        }
        state.groupShown = groupNews(group);
        var scroll = window.scrollY;
        var focused = document.activeElement && document.activeElement.id;
        show([groupPage(group)]);
        if (update) {
          window.scrollTo(0, scroll);
          var again = focused && document.getElementById(focused);
          if (again) again.focus();
          var alerts = Array.prototype.map.call(main().querySelectorAll(".alert"), function (alert) { return alert.textContent; });
          announce(alerts.length ? alerts.join(" ") : t("card.updated", { what: group.name }));
        } else {
          arrive(document.getElementById("group-name"));
        }
        setLiveMark();
      })
      .catch(function (error) {
        if (!stillOn("group", id) || sequence !== groupSequence) return;
        if (error.code === "NOT_FOUND" || error.code === "FORBIDDEN") groupNotFound();
        else show([errorBox(error)]);
      });
  }

  function groupNotFound() {
    notFound("group.notFound");
  }

  function groupPage(group) {
    var health = group.health;
    var zone = group.timeZone;
    var mix = health.mix;
    var posted = mix.content + mix.interaction + mix.promotion;
    var alerts = health.alerts.map(function (kind) {
      return h("p", { class: "alert", role: "status", "data-alert": kind, text: t("groupAlert." + kind, {
        rate: perMille(health.leaveRatePerMille),
        days: health.windowDays,
        share: percent(posted ? mix.promotion / posted : 0),
      }) });
    });
    return h("article", { class: "group-page", "aria-labelledby": "group-name" }, [
      h("header", { class: "card-head" }, [
        h("h1", { id: "group-name", text: group.name }),
        group.archivedAt ? h("p", { class: "status", text: t("group.archived", { when: inZone(group.archivedAt, zone) }) }) : null,
        h("dl", { class: "facts" }, [
          h("dt", { text: t("group.kind") }), h("dd", { text: group.kind }),
          h("dt", { text: t("card.owner") }), h("dd", { text: group.owner }),
          h("dt", { text: t("group.timeZone") }), h("dd", { text: zone }),
        ]),
      ]),
    ].concat(alerts, [
      h("div", { class: "verdicts verdicts-3" }, POST_KINDS.map(function (kind) {
        var key = kind.toLowerCase();
        return verdictBox(t("group.postTitle", { kind: t("postKind." + kind) }), group[key], zone, "post-" + key, "group.nextAllowed");
      })),
      groupHealth(health, posted),
      groupPosts(group.posts, zone),
      silentMembers(group.silentMembers),
      h("p", { class: "live", id: "live" }),
    ]));
  }

  function groupHealth(health, posted) {
    var mix = health.mix;
    var share = function (n) { return n + " (" + percent(posted ? n / posted : 0) + ")"; };
    var facts = [
      [t("groups.members"), String(health.members), "members"],
      [t("group.moves", { days: health.windowDays }), t("group.movesValue", { joined: health.joined, left: health.left, removed: health.removed }), "moves"],
      [t("groups.leaveRate"), perMille(health.leaveRatePerMille), "leave-rate"],
      [t("group.active"), t("group.activeValue", { n: health.activeMembers, members: health.members }), "active"],
      [t("groups.postsToday"), t("group.postsOfCap", { n: health.postsToday, cap: health.postsPerDayCap }), "posts-today"],
      [t("group.mix"), t("group.mixValue", { content: share(mix.content), interaction: share(mix.interaction), promotion: share(mix.promotion) }), "mix"],
    ];
    return h("section", { class: "panel", "aria-labelledby": "health-title" }, [
      h("h2", { id: "health-title", text: t("group.health") }),
      h("dl", { class: "facts" }, facts.reduce(function (pairs, fact) {
        return pairs.concat([h("dt", { text: fact[0] }), h("dd", { id: fact[2], text: fact[1] })]);
      }, [])),
      h("p", { class: "help", text: t("group.mixHelp") }),
    ]);
  }

  /// The latest posts, those members left within a day of marked: which
  /// posts cost members.
  function groupPosts(posts, zone) {
    var body = posts.length
      ? h("div", { class: "scroll", tabindex: "0", role: "region", "aria-labelledby": "posts-title" }, [h("table", { class: "list", id: "posts" }, [
          h("thead", {}, [h("tr", {}, [
            h("th", { scope: "col", text: t("group.when") }),
            h("th", { scope: "col", text: t("group.postKind") }),
            h("th", { scope: "col", class: "number", text: t("group.leftAfter") }),
          ])]),
          h("tbody", {}, posts.map(function (post) {
            var left = post.membersLeftWithinADay;
            return h("tr", { class: left > 0 ? "alerting" : null }, [
              h("td", { text: inZone(post.at, zone) }),
              h("td", {}, [t("postKind." + post.kind), left > 0 ? h("span", { class: "badge", text: t("group.costly") }) : null]),
              h("td", { class: "number", text: String(left) }),
            ]);
          })),
        ])])
      : h("p", { text: t("group.postsNone") });
    return h("section", { class: "panel", "aria-labelledby": "posts-title" }, [h("h2", { id: "posts-title", text: t("group.posts") }), body]);
  }

  /// Who has gone quiet, and whether the personal word may go out: never
  /// to someone whose own gate refuses a chat (they deleted or blocked us).
  function silentMembers(members) {
    var body = members.length
      ? h("div", { class: "scroll", id: "silent", tabindex: "0", role: "region", "aria-labelledby": "silent-title" }, [h("table", { class: "list" }, [
          h("thead", {}, [h("tr", {}, ["group.member", "group.silentFor", "contacts.name", "group.greet"].map(function (key) {
            return h("th", { scope: "col", text: t(key) });
          }))]),
          h("tbody", {}, members.map(function (member) {
            var contact = member.contact;
            var gate = member.contactGate;
            var greeting = member.mayBeGreeted
              ? [h("span", { class: "pill pill-allow", text: t("group.mayGreet") })]
              : [h("span", { class: "badge", text: t("group.doNotGreet") }), gate ? " " : null,
                 gate ? h("span", { class: "pill pill-" + gate.verdict.toLowerCase(), "data-verdict": gate.verdict, text: t("verdict." + gate.verdict) }) : null];
            return h("tr", { "data-member": member.member }, [
              h("th", { scope: "row", text: member.member }),
              h("td", {}, [t("group.days", { n: member.silentDays }), h("span", { class: "meta", text: t("nudge." + member.nudge) })]),
              h("td", {}, [contact
                ? h("a", { href: "#/contact/" + contact.id, text: contact.displayName || shortId(contact.id) })
                : h("span", { class: "meta", text: t("group.noContact") })]),
              h("td", {}, greeting),
            ]);
          })),
        ])])
      : h("p", { text: t("group.silentNone") });
    return h("section", { class: "panel wide", "aria-labelledby": "silent-title" }, [
      h("h2", { id: "silent-title", text: t("group.silent") }),
      h("p", { class: "help", text: t("group.silentHelp") }),
      body,
    ]);
  }

  // ---- preflight ----

  function renderPreflight() {
    var tags = h("input", { id: "audience", name: "audience", type: "text", required: true, "aria-describedby": "audience-help" });
    var result = h("div", { id: "preflight-result", "aria-live": "polite" });
    var form = h("form", { class: "panel", onsubmit: function (event) {
      event.preventDefault();
      gql("query($tags: String) { preflight(audience: { tags: $tags }, mode: MASS) { total unknownContacts verdicts { verdict count } reasons { code count } } }", { tags: tags.value.trim() })
        .then(function (data) {
          var answer = data.preflight;
          result.replaceChildren(
            h("p", { class: "total", text: t("preflight.total", { n: answer.total }) }),
            h("table", { class: "list" }, [
              h("thead", {}, [h("tr", {}, [h("th", { scope: "col", text: t("preflight.verdict") }), h("th", { scope: "col", class: "number", text: t("preflight.count") })])]),
              h("tbody", {}, answer.verdicts.map(function (row) {
                return h("tr", {}, [
                  h("th", { scope: "row" }, [h("span", { class: "pill pill-" + row.verdict.toLowerCase(), text: t("verdict." + row.verdict) })]),
                  h("td", { class: "number", text: String(row.count) }),
                ]);
              })),
            ]),
            h("p", { class: "help", text: t("preflight.reasons") + ": " + answer.reasons.filter(function (r) { return r.count > 0; }).map(function (r) { return t("reasonName." + r.code) + " " + r.count; }).join(t("list.separator")) })
          );
        })
        .catch(function (error) { result.replaceChildren(errorBox(error)); });
    } }, [
      h("h1", { text: t("preflight.heading") }),
      h("label", { for: "audience", text: t("preflight.tags") }),
      tags,
      h("p", { id: "audience-help", class: "help", text: t("preflight.tagsHelp") }),
      h("button", { type: "submit", text: t("preflight.run") }),
      result,
    ]);
    show([form]);
    tags.focus();
  }

  // ---- routing ----

  function currentRoute() {
    var hash = window.location.hash.indexOf("#/") === 0 ? window.location.hash.slice(2) : "";
    var parts = hash.split("?");
    var path = parts[0].split("/");
    var query = {};
    new URLSearchParams(parts[1] || "").forEach(function (value, key) { query[key] = value; });
    return { page: path[0] || "", id: path[1] || null, query: query };
  }

  function route() {
    if (!state.me) {
      renderSignIn();
      return;
    }
    var where = currentRoute();
    renderFrame();
    document.title = t("app.title");
    if (where.page !== "contact" && where.page !== "campaign" && where.page !== "group") stopLive();
    if (READERS.indexOf(state.me.role) < 0) {
      show([h("p", { class: "error", role: "alert", text: t("role.apiOnly") })]);
      return;
    }
    if (where.page === "contact" && where.id && UUID.test(where.id)) renderContact(where.id);
    else if (where.page === "contact") notYours();
    else if (where.page === "contacts") {
      renderContacts(where.query);
      arrive(main().querySelector("h1"));
    } else if (where.page === "campaigns") {
      renderCampaigns();
      arrive(main().querySelector("h1"));
    }
    else if (where.page === "campaign" && where.id && UUID.test(where.id)) renderCampaign(where.id);
    else if (where.page === "campaign") campaignNotFound();
    else if (where.page === "groups") {
      renderGroups();
      arrive(main().querySelector("h1"));
    }
    else if (where.page === "group" && where.id && UUID.test(where.id)) renderGroup(where.id);
    else if (where.page === "group") groupNotFound();
    else if (where.page === "preflight") renderPreflight();
    else renderFind();
  }

  // Only `#/…` addresses are pages; the skip link's `#main` is not.
  window.addEventListener("hashchange", function () {
    if (window.location.hash === "" || window.location.hash.indexOf("#/") === 0) route();
  });
  document.querySelector(".skip").addEventListener("click", function (event) {
    event.preventDefault();
    main().focus();
  });

  loadWords()
    .then(function () {
      renderFrame();
      if (state.token) signIn(state.token);
      else renderSignIn();
    })
    .catch(function () {
      // Without its words the page cannot speak; say so in both languages.
      show([h("p", { class: "error", role: "alert", text: "The console could not load its words: reload the page. 控制台文字加载失败，请刷新页面。" })]);
    });
})();
