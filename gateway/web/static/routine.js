// The what-if preview follows the routine as it is edited: the form is sent as it stands to the
// page's preview address and the answer (an HTML fragment we render on the server) replaces the
// panel. Without JavaScript the "Preview" button does the same with a full page.
(function () {
  "use strict";
  var form = document.getElementById("routine-form");
  var body = document.getElementById("preview-body");
  if (!form || !body || !window.fetch || !window.URLSearchParams) { return; }
  var timer = null;
  var asked = 0;

  function preview() {
    var data = new URLSearchParams(new FormData(form));
    data.delete("action");
    var mine = ++asked;
    body.parentNode.setAttribute("aria-busy", "true");
    body.classList.add("preview-busy");
    fetch(form.getAttribute("data-preview"), {method: "POST", body: data, credentials: "same-origin",
                                              headers: {"Accept": "text/html"}})
      .then(function (reply) { if (!reply.ok) { throw new Error(reply.status); } return reply.text(); })
      .then(function (html) {
        if (mine !== asked) { return; }  // a later edit is on its way
        var fresh = new DOMParser().parseFromString(html, "text/html").body;
        body.replaceChildren.apply(body, Array.prototype.slice.call(fresh.childNodes));
      })
      .catch(function () {
        if (mine === asked) { body.textContent = "The preview could not be made just now: press Preview."; }
      })
      .then(function () {
        if (mine === asked) { body.parentNode.removeAttribute("aria-busy"); body.classList.remove("preview-busy"); }
      });
  }

  function soon(event) {
    if (event.target && event.target.name === "why") { return; }
    window.clearTimeout(timer);
    timer = window.setTimeout(preview, 400);
  }

  form.addEventListener("input", soon);
  form.addEventListener("change", soon);
})();
