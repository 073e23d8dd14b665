/*
 * The Freshdesk adapter (Freshworks platform 3.0): app client → cjm's sidebar (sidebar.js) or
 * the live map (full_page_app, <body data-cjm="map">).
 *
 * Every call to cjm is a request template of config/requests.json, run by Freshworks' proxy:
 * it adds the secure iparam cjm_token as a bearer token, which the browser never sees.
 */
(function () {
  "use strict";

  function parse(text) {
    if (typeof text !== "string") return text || null;
    try { return JSON.parse(text); } catch (e) { return null; }
  }

  function invoke(client, name, context, body) {
    var options = { context: context };
    if (body) options.body = JSON.stringify(body);
    return client.request.invokeTemplate(name, options).then(
      function (r) { return { status: r.status, body: parse(r.response) }; },
      function (e) { return { status: (e && e.status) || 0, body: parse(e && e.response) }; }
    );
  }

  function sidebar(client) {
    window.CJMSidebar.start(document.getElementById("app"), {
      ticketId: function () {
        return client.data.get("ticket").then(function (data) { return data.ticket.id; });
      },
      load: function (id) {
        return invoke(client, "getTicketView", { ticket_id: String(id) });
      },
      correct: function (id, body) {
        return invoke(client, "postCorrection", { ticket_id: String(id) }, body);
      },
      agent: function () {
        // The bearer token names no agent: the body says who corrected (kept with the label).
        return client.data.get("loggedInUser").then(
          function (data) {
            var user = data.loggedInUser || {};
            return (user.contact && user.contact.email) || user.email || null;
          },
          function () { return null; }
        );
      },
      setStageField: function (fieldId, value) {
        return client.interface.trigger("setValue", { id: fieldId, value: value });
      },
      openTicket: function (id) {
        client.interface.trigger("click", { id: "ticket", value: Number(id) });
      },
    });
  }

  function map(client) {
    var root = document.getElementById("app");
    client.request.invokeTemplate("getJourneyMap", { context: {} }).then(
      function (r) {
        var frame = document.createElement("iframe");
        frame.className = "cjm-map";
        frame.id = "cjm-map";
        frame.setAttribute("sandbox", "allow-same-origin");
        frame.srcdoc = r.response;
        root.replaceChildren(frame);
      },
      function (e) {
        var p = document.createElement("p");
        p.id = "cjm-unreachable";
        p.textContent = e && e.status ? "cjm answered " + e.status + " for the journey map." : "cjm unreachable.";
        root.replaceChildren(p);
      }
    );
  }

  app.initialized().then(function (client) {
    if (document.body.getAttribute("data-cjm") === "map") map(client);
    else sidebar(client);
  });
})();
