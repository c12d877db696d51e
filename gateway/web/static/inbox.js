// The inbox refreshes its list when a lifecycle step of one of my homes arrives (server-sent
// events), without a reload; without JavaScript the page is the same, reloaded by hand.
(function () {
  "use strict";
  var list = document.getElementById("inbox-list");
  var status = document.getElementById("live-status");
  if (!list || !window.EventSource || !window.fetch) { return; }
  var WORDS = {raised: "New alert", notified: "Someone was called", escalated: "The next person was called",
               acknowledged: "Someone is dealing with an alert", resolved: "An alert was closed",
               asked: "The person was asked if they are OK"};
  var pending = null;

  function focusInside() {
    return list.contains(document.activeElement) && document.activeElement !== document.body;
  }

  function refresh(said) {
    fetch(window.location.pathname + window.location.search, {credentials: "same-origin",
                                                               headers: {"Accept": "text/html"}})
      .then(function (reply) { if (!reply.ok) { throw new Error(reply.status); } return reply.text(); })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        var fresh = page.getElementById("inbox-list");
        if (!fresh) { return; }
        if (focusInside()) { pending = said; return; }  // never pull the form from under someone typing
        list.replaceChildren.apply(list, Array.prototype.slice.call(fresh.childNodes));
        var time = new Date().toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", hour12: false});
        status.textContent = said + " (" + time + ").";
      })
      .catch(function () { status.textContent = "Could not refresh: reload the page to see the latest."; });
  }

  list.addEventListener("focusout", function () {
    window.setTimeout(function () {
      if (pending && !focusInside()) { var said = pending; pending = null; refresh(said); }
    }, 0);
  });

  var source = new EventSource(list.getAttribute("data-events"));
  source.addEventListener("alert", function (event) {
    var step = {};
    try { step = JSON.parse(event.data); } catch (e) { step = {}; }
    refresh(WORDS[step.step] || "Updated");
  });
  source.addEventListener("hello", function () { list.setAttribute("data-live", "yes"); });
})();
