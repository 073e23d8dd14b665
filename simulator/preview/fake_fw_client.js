/*
 * The simulator's stand-in for the Freshworks app client ({{{appclient}}}), which only the FDK or
 * Freshdesk itself serves. app.initialized() resolves a client whose calls travel to the fake
 * host page by postMessage: data.get, request.invokeTemplate, interface.trigger, iparams.get.
 */
(function () {
  "use strict";
  var query = new URLSearchParams(location.search);
  var origin = query.get("origin");
  var next = 0;
  var pending = {};

  window.addEventListener("message", function (event) {
    if (event.origin !== origin || typeof event.data !== "string") return;
    var message = JSON.parse(event.data);
    var waiting = pending[message.id];
    if (!waiting) return;
    delete pending[message.id];
    if (message.error !== undefined) waiting.reject(message.error); else waiting.resolve(message.result);
  });

  function rpc(method, params) {
    var id = ++next;
    return new Promise(function (resolve, reject) {
      pending[id] = { resolve: resolve, reject: reject };
      window.parent.postMessage(JSON.stringify({ fw: true, id: id, method: method, params: params }), origin);
    });
  }

  var client = {
    data: { get: function (name) { return rpc("data.get", name); } },
    request: {
      invokeTemplate: function (name, options) {
        return rpc("request.invokeTemplate", { name: name, options: options || {} });
      },
    },
    interface: {
      trigger: function (action, args) { return rpc("interface.trigger", { action: action, args: args }); },
    },
    iparams: { get: function () { return rpc("iparams.get", null); } },
  };

  window.app = { initialized: function () { return Promise.resolve(client); } };
})();
