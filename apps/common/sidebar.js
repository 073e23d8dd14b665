/*
 * cjm's ticket sidebar, shared by the Zendesk and the Freshdesk app.
 *
 * It knows nothing about either helpdesk: each app passes an adapter (zendesk.js, freshdesk.js)
 * that reads the ticket id, calls cjm (through the helpdesk's proxy, which adds the secret) and
 * sets the ticket field. Every answer from cjm becomes one of these states:
 *   loading · unreachable (no answer, or 5xx) · refused (401) · not mined (404, or status
 *   "not_mined") · abstained (mined, no stage) · classified.
 * Customer text is only ever put into the page with textContent, never as HTML.
 *
 * Adapter: { ticketId(): Promise<id>, load(id): Promise<{status, body}>,
 *            correct(id, body): Promise<{status, body}>,
 *            setStageField(fieldId, value)?: Promise, resize(height)?: void,
 *            openTicket(id)?: void,
 *            agent()?: Promise<string|null> }   (status 0 = no answer at all)
 */
(function (global) {
  "use strict";

  var BAND = { high: "High", medium: "Medium", low: "Low" };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) {
      if (child) node.appendChild(child);
    });
    return node;
  }

  function labelOf(list, name) {
    var found = (list || []).filter(function (item) { return item.name === name; })[0];
    return found ? found.label : name;
  }

  function feeling(name) {
    return String(name).replace(/_/g, " / ");  // "frustration_anger" → "frustration / anger"
  }

  function day(iso) {
    return iso ? String(iso).slice(0, 10) : "";
  }

  function Sidebar(root, adapter) {
    this.root = root;
    this.adapter = adapter;
    this.ticketId = null;
    this.view = null;
    this.message = "";
  }

  Sidebar.prototype.show = function (state, nodes) {
    this.root.replaceChildren();
    this.root.setAttribute("data-state", state);
    var self = this;
    nodes.forEach(function (node) { if (node) self.root.appendChild(node); });
    if (this.adapter.resize) this.adapter.resize(Math.max(120, this.root.scrollHeight + 16));
  };

  Sidebar.prototype.notice = function (state, title, detail, retry) {
    var self = this;
    var nodes = [el("div", { class: "cjm-notice", id: "cjm-" + state }, [
      el("strong", { text: title }),
      detail ? el("p", { text: detail }) : null,
    ])];
    if (retry) {
      var button = el("button", { type: "button", class: "cjm-retry", text: "Try again" });
      button.addEventListener("click", function () { self.refresh(); });
      nodes[0].appendChild(button);
    }
    this.show(state, nodes);
  };

  Sidebar.prototype.start = function () {
    var self = this;
    this.notice("loading", "Loading cjm…", "", false);
    return Promise.resolve(this.adapter.ticketId()).then(function (id) {
      self.ticketId = id;
      return self.refresh();
    });
  };

  Sidebar.prototype.refresh = function () {
    var self = this;
    return Promise.resolve(this.adapter.load(this.ticketId)).then(
      function (answer) { self.answer(answer); },
      function () { self.answer({ status: 0, body: null }); }
    );
  };

  Sidebar.prototype.answer = function (answer) {
    var status = answer && answer.status;
    var body = answer && answer.body;
    if (!status || status >= 500) {
      this.notice("unreachable", "cjm unreachable",
        "The cjm server did not answer. Check the cjm URL setting, or try again in a minute.", true);
    } else if (status === 401 || status === 403) {
      this.notice("refused", "cjm refused this app",
        (body && body.error) || "Check the shared secret / token setting of the app.", false);
    } else if (status === 404) {
      this.notice("not-mined", "Not mined yet",
        "cjm has not seen this ticket yet: it is analysed after the next sync or webhook.", true);
    } else if (status !== 200 || !body) {
      this.notice("unreachable", "cjm unreachable",
        (body && body.error) || "Unexpected answer " + status + ".", true);
    } else if (body.status === "not_mined") {
      this.view = body;
      this.render("not-mined");
    } else {
      this.view = body;
      this.render(body.status === "abstained" ? "abstained" : "classified");
    }
  };

  Sidebar.prototype.render = function (state) {
    var self = this;
    var v = this.view;
    var stages = (v.choices && v.choices.stages) || [];
    var themes = (v.choices && v.choices.themes) || [];
    var nodes = [];
    var head = el("section", { class: "cjm-stage", id: "cjm-stage" });
    var corrected = v.override && v.override.stage;
    if (corrected) {
      head.append(
        el("span", { class: "cjm-caption", text: "Journey stage" }),
        el("div", { class: "cjm-stage-line" }, [
          el("span", { class: "cjm-stage-name", id: "cjm-stage-name", text: labelOf(stages, v.override.stage) }),
          el("span", { class: "cjm-band cjm-band-agent", id: "cjm-band", text: "set by an agent" }),
        ])
      );
    } else if (state === "classified") {
      head.append(
        el("span", { class: "cjm-caption", text: "Journey stage" }),
        el("div", { class: "cjm-stage-line" }, [
          el("span", { class: "cjm-stage-name", id: "cjm-stage-name", text: labelOf(stages, v.stage) }),
          el("span", { class: "cjm-band cjm-band-" + v.confidence_band, id: "cjm-band",
                       text: (BAND[v.confidence_band] || "") + " · " + Math.round(v.confidence * 100) + "%" }),
        ])
      );
    } else if (state === "abstained") {
      head.append(el("div", { class: "cjm-notice", id: "cjm-abstained" }, [
        el("strong", { text: "No stage: cjm abstained" }),
        el("p", { text: v.language && v.language !== "en"
          ? "The text is not in a language cjm labels (" + v.language + ")."
          : "cjm was too unsure to name a stage. Pick one below if you know it." }),
      ]));
    } else {
      head.append(el("div", { class: "cjm-notice", id: "cjm-not-mined" }, [
        el("strong", { text: "Not mined yet" }),
        el("p", { text: "cjm stored this ticket but has not analysed it yet." }),
      ]));
    }
    nodes.push(head);
    if (corrected) {
      var guess = v.stage ? labelOf(stages, v.stage) + " (" + (BAND[v.confidence_band] || "") + " · " +
        Math.round(v.confidence * 100) + "%)" : state === "abstained" ? "no stage" : "not mined";
      nodes.push(el("p", { class: "cjm-override", id: "cjm-override",
        text: "cjm: " + guess + " → agent: " + labelOf(stages, v.override.stage) +
              (v.override.by ? " (" + v.override.by + ", " + day(v.override.at) + ")" : "") }));
    }
    // An agent's themes (when they corrected them) are what the ticket carries.
    var shownThemes = v.agent_themes
      ? v.agent_themes : (v.themes || []).map(function (t) { return t.name; });
    if (shownThemes.length) {
      nodes.push(el("section", { class: "cjm-block", id: "cjm-themes" }, [
        el("span", { class: "cjm-caption", text: "Pain themes" }),
        el("div", { class: "cjm-chips" }, shownThemes.map(function (name) {
          return el("span", { class: "cjm-chip", "data-theme": name, text: labelOf(themes, name) });
        })),
      ]));
    }
    if (v.evidence && v.evidence.length) {
      nodes.push(el("section", { class: "cjm-block", id: "cjm-evidence" }, [
        el("span", { class: "cjm-caption", text: "Why" }),
        el("ul", { class: "cjm-evidence" }, v.evidence.map(function (e) {
          return el("li", {}, [
            el("q", { text: e.sentence }),
            e.message ? el("span", { class: "cjm-from",
              text: " — message " + e.message.id + ", " + day(e.message.created_at) }) : null,
          ]);
        })),
      ]));
    }
    if (v.emotions && v.emotions.length) {
      nodes.push(el("section", { class: "cjm-block", id: "cjm-emotion" }, [
        el("span", { class: "cjm-caption", text: "Emotion" }),
        el("div", { class: "cjm-chips" }, v.emotions.slice(0, 3).map(function (e) {
          return el("span", { class: "cjm-chip cjm-emotion", text: feeling(e.emotion) });
        })),
      ]));
    }
    nodes.push(this.correction(stages, v));
    if (v.journey && v.journey.length) {
      nodes.push(el("section", { class: "cjm-block", id: "cjm-journey" }, [
        el("span", { class: "cjm-caption", text: "This customer's journey" }),
        el("ol", { class: "cjm-timeline" }, v.journey.map(function (step) {
          var item = el("li", { class: step.current ? "cjm-current" : "", "data-ticket": step.ticket_id }, [
            el("span", { class: "cjm-when", text: day(step.created_at) }),
            el("span", { class: "cjm-what", text: (step.elsewhere ? step.source + " " : "") +
              "#" + step.ticket_id + " " +
              (step.stage ? labelOf(stages, step.stage) : step.mined ? "no stage" : "not mined") }),
            step.themes.length ? el("span", { class: "cjm-small",
              text: step.themes.map(function (t) { return labelOf(themes, t); }).join(", ") }) : null,
            step.emotion ? el("span", { class: "cjm-small", text: feeling(step.emotion) }) : null,
          ]);
          // another helpdesk's ticket id means nothing here: named, not linked
          if (!step.current && !step.elsewhere && self.adapter.openTicket) {
            item.classList.add("cjm-link");
            item.addEventListener("click", function () { self.adapter.openTicket(step.ticket_id); });
          }
          return item;
        })),
      ]));
    }
    if (v.model_version) {
      nodes.push(el("p", { class: "cjm-foot", text: "model " + String(v.model_version).slice(0, 12) }));
    }
    if (this.message) nodes.push(el("p", { class: "cjm-message", id: "cjm-message", text: this.message }));
    this.show(state, nodes);
  };

  Sidebar.prototype.correction = function (stages, v) {
    var self = this;
    var current = (v.override && v.override.stage) || v.stage;
    var row = el("div", { class: "cjm-chips" }, stages.filter(function (s) {
      return s.name !== current;
    }).map(function (s) {
      var button = el("button", { type: "button", class: "cjm-correct", "data-stage": s.name, text: s.label });
      button.addEventListener("click", function () { self.correct(s.name); });
      return button;
    }));
    return el("section", { class: "cjm-block", id: "cjm-correct" }, [
      el("span", { class: "cjm-caption", text: current ? "Correct stage" : "Set stage" }), row,
    ]);
  };

  Sidebar.prototype.correct = function (stage) {
    var self = this;
    var v = this.view;
    var buttons = this.root.querySelectorAll("button.cjm-correct");
    Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
    var agent = this.adapter.agent ? this.adapter.agent() : Promise.resolve(null);
    return Promise.resolve(agent).then(function (who) {
      var body = { stage: stage };
      if (who) body.agent = who;
      return self.adapter.correct(self.ticketId, body);
    }).then(function (answer) {
      if (!answer || answer.status !== 200) {
        self.message = "Not saved: " + ((answer && answer.body && answer.body.error) ||
          "cjm unreachable") + ".";
        self.render(self.root.getAttribute("data-state"));
        return;
      }
      self.view = answer.body.ticket;
      self.message = "Saved: " + (answer.body.writeback === "sending"
        ? "cjm writes it to the ticket now." : answer.body.note + ".");
      var field = v.stage_field_id;
      var done = field && self.adapter.setStageField
        ? self.adapter.setStageField(field, "stage__" + stage) : null;
      return Promise.resolve(done).then(function () {
        self.render(self.view.status === "abstained" ? "abstained"
          : self.view.status === "not_mined" ? "not-mined" : "classified");
      });
    }, function () {
      self.message = "Not saved: cjm unreachable.";
      self.render(self.root.getAttribute("data-state"));
    });
  };

  global.CJMSidebar = {
    start: function (root, adapter) {
      var sidebar = new Sidebar(root, adapter);
      sidebar.start();
      return sidebar;
    },
  };
})(window);
