/*
 * The simulator's stand-in for Zendesk's CDN build of the ZAF SDK (unreachable offline), served by
 * the preview page (and the browser tests) in place of https://static.zdassets.com/…/zaf_sdk.min.js. It speaks the SDK's
 * postMessage wire format (zendesk/zendesk_app_framework_sdk lib/client.js; notes §1.4):
 * handshake → zaf.app.registered; {id, request: get|set|invoke, params} → {id, result|error};
 * request() posts key "request:<n>" and waits for zaf.request:<n>.done / .fail.
 */
(function () {
  "use strict";
  var query = new URLSearchParams(location.search);
  var origin = query.get("origin");
  var guid = query.get("app_guid");

  function Client() {
    var self = this;
    this.next = 0;
    this.requests = 0;
    this.pending = {};
    this.handlers = {};
    this.ready = new Promise(function (resolve) { self.registered = resolve; });
    window.addEventListener("message", function (event) {
      if (event.origin !== origin || typeof event.data !== "string") return;
      var message = JSON.parse(event.data);
      if (message.key === "zaf.app.registered") {
        self.meta = message.message.metadata;
        self.ctx = message.message.context;
        self.registered();
      } else if (message.id !== undefined && self.pending[message.id]) {
        var waiting = self.pending[message.id];
        delete self.pending[message.id];
        if (message.error) waiting.reject(message.error); else waiting.resolve(message.result);
      } else if (message.key && message.key.indexOf("zaf.") === 0) {
        var handler = self.handlers[message.key.slice(4)];
        if (handler) handler(message.message);
      }
    });
    this.post({ key: "iframe.handshake", message: { version: "2.0" }, appGuid: guid });
  }

  Client.prototype.post = function (payload) {
    window.parent.postMessage(JSON.stringify(payload), origin);
  };

  Client.prototype.rpc = function (request, params) {
    var self = this;
    return this.ready.then(function () {
      var id = ++self.next;
      return new Promise(function (resolve, reject) {
        self.pending[id] = { resolve: resolve, reject: reject };
        self.post({ id: id, request: request, params: params, appGuid: guid, instanceGuid: guid });
      });
    });
  };

  Client.prototype.get = function (paths) { return this.rpc("get", [].concat(paths)); };
  Client.prototype.set = function (path, value) {
    var params = {};
    params[path] = value;
    return this.rpc("set", params);
  };
  Client.prototype.invoke = function (name) {
    var params = {};
    params[name] = Array.prototype.slice.call(arguments, 1);
    return this.rpc("invoke", params);
  };
  Client.prototype.metadata = function () {
    var self = this;
    return this.ready.then(function () { return self.meta; });
  };
  Client.prototype.context = function () {
    var self = this;
    return this.ready.then(function () { return self.ctx; });
  };
  Client.prototype.on = function (name, handler) { this.handlers[name] = handler; };
  Client.prototype.request = function (options) {
    var self = this;
    return this.ready.then(function () {
      var key = "request:" + (++self.requests);
      return new Promise(function (resolve, reject) {
        self.on(key + ".done", function (message) { resolve(message.responseArgs[0]); });
        self.on(key + ".fail", function (message) { reject(message.responseArgs[0]); });
        self.post({ key: key, message: options, appGuid: guid });
      });
    });
  };

  window.ZAFClient = {
    init: function () { return origin && guid ? new Client() : false; },
  };
})();
