// Small enhancements; every page works without this script.
(function () {
  "use strict";

  // Job page: update the progress in place, reload once the job is final.
  var progress = document.querySelector("[data-progress]");
  if (progress && progress.getAttribute("data-final") === "false") {
    var bar = progress.querySelector("progress");
    var set = function (name, value) {
      var el = progress.querySelector('[data-field="' + name + '"]');
      if (el && name !== "status") el.textContent = Number(value).toLocaleString("en-US");
    };
    var poll = function () {
      fetch(progress.getAttribute("data-progress"), { credentials: "same-origin" })
        .then(function (r) {
          // Signed out meanwhile: the page itself leads to the sign-in form.
          if (r.redirected || r.status === 401) { window.location.reload(); return Promise.reject("signed out"); }
          return r.ok ? r.json() : Promise.reject(r.status);
        })
        .then(function (job) {
          bar.max = job.total; bar.value = job.processed;
          ["processed", "created", "updated", "failed"].forEach(function (k) { set(k, job[k]); });
          if (job["final"]) { window.location.reload(); } else { setTimeout(poll, 1000); }
        })
        .catch(function () { setTimeout(poll, 3000); });
    };
    setTimeout(poll, 500);
  }

  // Upload: show a dragged file over the drop area.
  var drop = document.querySelector("[data-drop]");
  if (drop) {
    var input = drop.querySelector("input[type=file]");
    ["dragenter", "dragover"].forEach(function (type) {
      drop.addEventListener(type, function (e) { e.preventDefault(); drop.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (type) {
      drop.addEventListener(type, function () { drop.classList.remove("over"); });
    });
    drop.addEventListener("drop", function (e) {
      e.preventDefault();
      if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; }
    });
  }

  // Ask before revoking.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.getAttribute("data-confirm"))) e.preventDefault();
    });
  });
})();
