// Asks the browser for the member's location and reloads the store page
// with it (lat, lng); on refusal, points them to the city search.
(function () {
  'use strict';
  var btn = document.getElementById('locate');
  var status = document.getElementById('status');
  if (!btn || !('geolocation' in navigator)) {
    return;
  }
  btn.hidden = false;
  function locate() {
    status.textContent = btn.getAttribute('data-locating');
    btn.disabled = true;
    navigator.geolocation.getCurrentPosition(function (pos) {
      var u = new URL(window.location.href);
      u.searchParams.set('lat', pos.coords.latitude.toFixed(5));
      u.searchParams.set('lng', pos.coords.longitude.toFixed(5));
      u.searchParams.delete('city');
      window.location.replace(u.toString());
    }, function () {
      status.textContent = btn.getAttribute('data-failed');
      btn.disabled = false;
      var city = document.getElementById('city');
      if (city) {
        city.focus();
      }
    }, { enableHighAccuracy: false, timeout: 10000, maximumAge: 300000 });
  }
  btn.addEventListener('click', locate);
  if (btn.getAttribute('data-auto') === '1') {
    locate();
  }
})();
