// The workflow editor: line numbers, validation as you type (debounced,
// POST to the console's /validate with the session's CSRF token), jumping
// to a problem's line and column, and confirmations for destructive forms.
// No framework, no build step; the page works without it.
(function () {
  "use strict";

  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // Forms that end something ask first.
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.getAttribute("data-confirm"))) {
        e.preventDefault();
      }
    });
  });

  var area = document.getElementById("yaml");
  if (!area) {
    return;
  }
  var gutter = document.getElementById("gutter");
  var list = document.getElementById("problems");
  var status = document.getElementById("status");
  var diagram = document.getElementById("diagram");
  var saveBtn = document.getElementById("save");
  var checking = area.getAttribute("data-checking") || "…";
  var errorLines = {};

  function renderGutter() {
    var n = area.value.split("\n").length;
    var frag = document.createDocumentFragment();
    for (var i = 1; i <= n; i++) {
      var s = document.createElement("span");
      s.textContent = String(i);
      if (errorLines[i]) {
        s.className = "err";
        s.title = errorLines[i];
      }
      frag.appendChild(s);
    }
    gutter.replaceChildren(frag);
    gutter.scrollTop = area.scrollTop;
  }

  function goTo(line, col) {
    var lines = area.value.split("\n");
    var pos = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) {
      pos += lines[i].length + 1;
    }
    pos += Math.max(0, col - 1);
    area.focus();
    area.setSelectionRange(pos, pos);
    // Bring the line into view: about 20px a line.
    var lh = parseFloat(window.getComputedStyle(area).lineHeight) || 20;
    area.scrollTop = Math.max(0, (line - 5) * lh);
  }

  function bindGoto(li) {
    var btn = li.querySelector("button.goto");
    if (btn) {
      btn.addEventListener("click", function () {
        goTo(Number(li.getAttribute("data-line")), Number(li.getAttribute("data-column")));
      });
    }
  }
  list.querySelectorAll("li.problem").forEach(bindGoto);
  list.querySelectorAll("li.problem").forEach(function (li) {
    var l = Number(li.getAttribute("data-line"));
    if (l > 0 && !errorLines[l]) {
      errorLines[l] = li.querySelector(".problem-text").textContent;
    }
  });

  function show(res) {
    errorLines = {};
    var frag = document.createDocumentFragment();
    res.problems.forEach(function (p) {
      var li = document.createElement("li");
      li.className = "problem";
      li.setAttribute("data-line", p.line);
      li.setAttribute("data-column", p.column);
      if (p.line > 0) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "goto";
        b.textContent = p.at;
        li.appendChild(b);
        li.appendChild(document.createTextNode(" "));
        if (!errorLines[p.line]) {
          errorLines[p.line] = p.text;
        }
      }
      var t = document.createElement("span");
      t.className = "problem-text";
      t.textContent = p.text;
      li.appendChild(t);
      bindGoto(li);
      frag.appendChild(li);
    });
    list.replaceChildren(frag);
    status.textContent = res.summary;
    status.className = "status " + (res.ok ? "status-ok" : "status-bad");
    if (res.ok && res.diagram) {
      diagram.innerHTML = res.diagram; // server-drawn SVG, every text escaped
    }
    renderGutter();
  }

  var timer = null;
  var seq = 0;
  function validate() {
    var mine = ++seq;
    status.textContent = checking;
    status.className = "status status-busy";
    fetch(area.getAttribute("data-validate"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ name: area.getAttribute("data-name"), yaml: area.value })
    }).then(function (r) {
      if (r.status === 401) {
        window.location.reload();
        return null;
      }
      return r.json();
    }).then(function (res) {
      if (res && mine === seq && res.problems) {
        show(res);
      }
    }).catch(function () {
      status.className = "status";
      status.textContent = "";
    });
  }

  area.addEventListener("input", function () {
    renderGutter();
    clearTimeout(timer);
    timer = setTimeout(validate, 400);
  });
  area.addEventListener("scroll", function () {
    gutter.scrollTop = area.scrollTop;
  });
  if (saveBtn) {
    saveBtn.hidden = false;
  }
})();
