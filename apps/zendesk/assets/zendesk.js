/*
 * The Zendesk adapter: ZAF v2 client → cjm's sidebar (sidebar.js) or the live map (nav_bar).
 *
 * Every call to cjm goes through Zendesk's proxy (secure: true, cors: false): the proxy
 * replaces {{setting.shared_secret}} — a secure setting the browser never sees — and signs a
 * 60-second HS256 JWT per request ({{jwt.token}}). cjm checks iss, aud ("cjm:<source>"), exp,
 * iat and the ticket id (journey/web/app_auth.py).
 */
(function () {
  "use strict";

  var ISSUER = "cjm-zendesk-app";
  var client = ZAFClient.init();

  function base(settings) {
    return String(settings.cjm_url || "").replace(/\/+$/, "");
  }

  function answer(result) {
    // ZAF resolves with the body (or with {responseJSON, status} under httpCompleteResponse)
    // and rejects with an XHR-like {status, responseJSON, responseText}.
    if (result && typeof result === "object" && "status" in result && "responseJSON" in result) {
      return { status: result.status, body: result.responseJSON };
    }
    return { status: 200, body: result };
  }

  function failure(error) {
    var body = error && error.responseJSON;
    if (!body && error && error.responseText) {
      try { body = JSON.parse(error.responseText); } catch (e) { body = null; }
    }
    return { status: (error && error.status) || 0, body: body };
  }

  function call(settings, agent, method, path, ticketId, body, dataType) {
    var claims = { iss: ISSUER, aud: "cjm:" + settings.cjm_source };
    if (ticketId !== null) claims.ticket_id = String(ticketId);
    if (agent) claims.email = agent;
    return client.request({
      url: base(settings) + path,
      type: method,
      contentType: "application/json",
      data: body ? JSON.stringify(body) : undefined,
      dataType: dataType || "json",
      secure: true,
      cors: false,
      headers: { Authorization: "Bearer {{jwt.token}}" },
      jwt: {
        algorithm: "HS256",
        secret_key: "{{setting.shared_secret}}",
        expiry: 60,
        claims: claims,
      },
    });
  }

  function sidebar(settings) {
    var agent = client.get("currentUser.email").then(
      function (data) { return data["currentUser.email"] || null; },
      function () { return null; }
    );
    var path = function (id) {
      return "/api/v1/tickets/" + encodeURIComponent(settings.cjm_source) + "/" + encodeURIComponent(id);
    };
    window.CJMSidebar.start(document.getElementById("app"), {
      ticketId: function () {
        return client.get("ticket.id").then(function (data) { return data["ticket.id"]; });
      },
      load: function (id) {
        return agent.then(function (who) {
          return call(settings, who, "GET", path(id), id, null).then(answer, failure);
        });
      },
      correct: function (id, body) {
        return agent.then(function (who) {
          return call(settings, who, "POST", path(id) + "/label", id, body).then(answer, failure);
        });
      },
      setStageField: function (fieldId, value) {
        // The agent sees the new stage at once; cjm has already recorded it either way.
        return client.set("ticket.customField:custom_field_" + fieldId, value);
      },
      openTicket: function (id) {
        client.invoke("routeTo", "ticket", String(id));
      },
      resize: function (height) {
        client.invoke("resize", { width: "100%", height: height + "px" });
      },
    });
  }

  function map(settings) {
    var root = document.getElementById("app");
    var path = "/api/v1/map/" + encodeURIComponent(settings.cjm_source);
    call(settings, null, "GET", path, null, null, "text").then(
      function (html) {
        var frame = document.createElement("iframe");
        frame.className = "cjm-map";
        frame.id = "cjm-map";
        frame.setAttribute("sandbox", "allow-same-origin");
        frame.srcdoc = typeof html === "string" ? html : String(html && html.responseText);
        root.replaceChildren(frame);
      },
      function (error) {
        var status = (error && error.status) || 0;
        var p = document.createElement("p");
        p.id = "cjm-unreachable";
        p.textContent = status ? "cjm answered " + status + " for the journey map." : "cjm unreachable.";
        root.replaceChildren(p);
      }
    );
  }

  Promise.all([client.metadata(), client.context()]).then(function (results) {
    var settings = results[0].settings || {};
    var location = results[1].location;
    if (location === "nav_bar") map(settings);
    else sidebar(settings);
  });
})();
