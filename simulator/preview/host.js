/*
 * The fake helpdesk host page (the simulator's sidebar preview, and the browser tests' host): embeds the app's page in an iframe on another origin
 * and answers its client the way Zendesk (ZAF v2) or Freshdesk (platform 3.0) would: ticket id,
 * current user, settings, field set, resize, and the request proxy (which the simulator does:
 * proxy/zendesk signs the JWT with the secure setting, proxy/freshdesk fills the templates).
 * What the app did is kept in window.hostLog and window.ticketFields for the test to read.
 */
(function () {
  "use strict";
  var H = window.HOST;
  var frame = document.createElement("iframe");
  var appOrigin = new URL(H.app_url).origin;
  window.hostLog = [];
  window.ticketFields = {};
  frame.id = "app-frame";
  frame.src = H.app_url + (H.app_url.indexOf("?") < 0 ? "?" : "&") +
    "origin=" + encodeURIComponent(location.origin) + "&app_guid=test-guid";
  document.getElementById("panel").appendChild(frame);
  document.getElementById("ticket").textContent = "Ticket #" + H.ticket_id + " (" + H.vendor + ")";

  function reply(payload) {
    frame.contentWindow.postMessage(JSON.stringify(payload), appOrigin);
  }

  function proxy(path, payload) {
    return fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
                         body: JSON.stringify(payload) }).then(function (r) { return r.json(); });
  }

  function zendesk(message) {
    if (message.key === "iframe.handshake") {
      window.hostLog.push("handshake");
      reply({ key: "zaf.app.registered", message: {
        metadata: { appId: 1, installationId: 1, name: "cjm", settings: H.settings },
        context: { product: "support", location: H.location, instanceGuid: "test-guid",
                   account: { subdomain: "acme" } } } });
    } else if (message.request === "get") {
      window.hostLog.push("get");
      var result = {};
      message.params.forEach(function (path) { result[path] = H.data[path]; });
      reply({ id: message.id, result: result });
    } else if (message.request === "set") {
      Object.keys(message.params).forEach(function (path) {
        window.ticketFields[path] = message.params[path];
        window.hostLog.push("set " + path + "=" + message.params[path]);
      });
      reply({ id: message.id, result: {} });
    } else if (message.request === "invoke") {
      var name = Object.keys(message.params)[0];
      window.hostLog.push("invoke " + name);
      if (name === "resize") frame.style.height = message.params[name][0].height;
      reply({ id: message.id, result: {} });
    } else if (message.key && message.key.indexOf("request:") === 0) {
      window.hostLog.push("request " + message.message.type + " " + message.message.url);
      proxy(H.base + "/proxy/zendesk", message.message).then(function (out) {
        var args = out.ok ? [out.body] : [{ status: out.status, responseJSON: out.json,
                                             responseText: out.text }];
        reply({ key: "zaf." + message.key + (out.ok ? ".done" : ".fail"),
                message: { responseArgs: args } });
      });
    }
  }

  function freshdesk(message) {
    var params = message.params;
    var answer = function (result) { reply({ id: message.id, result: result }); };
    var fail = function (error) { reply({ id: message.id, error: error }); };
    window.hostLog.push(message.method);
    if (message.method === "data.get") {
      var data = {};
      data[params] = H.data[params];
      answer(data);
    } else if (message.method === "iparams.get") {
      answer(H.settings);
    } else if (message.method === "interface.trigger") {
      if (params.action === "setValue") {
        window.ticketFields[params.args.id] = params.args.value;
        window.hostLog.push("setValue " + params.args.id + "=" + params.args.value);
      }
      answer({});
    } else if (message.method === "request.invokeTemplate") {
      window.hostLog.push("template " + params.name);
      proxy(H.base + "/proxy/freshdesk", params).then(function (out) {
        var result = { status: out.status, headers: {}, response: out.text };
        if (out.ok) answer(result); else fail(Object.assign(result, { errorSource: "APP" }));
      });
    }
  }

  window.addEventListener("message", function (event) {
    if (event.origin !== appOrigin || typeof event.data !== "string") return;
    var message = JSON.parse(event.data);
    if (message.fw) freshdesk(message); else zendesk(message);
  });
})();
