// Demo script: asks the uncached API for the origin's time.
(function () {
  "use strict";
  var clock = document.getElementById("clock");
  fetch("/api/time")
    .then(function (r) { return r.json(); })
    .then(function (t) { clock.textContent = "origin " + t.origin + " time: " + t.time; })
    .catch(function () { clock.textContent = "origin time unavailable"; });
})();
