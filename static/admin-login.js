/* The Socket.IO Admin UI's login, fitted to this server (homeapp/operations/admin.py loads it
 * before the UI's own scripts).
 *
 * - Server URL starts as this server's origin when the UI has none saved.
 * - The UI appends its namespace, /admin, to the URL it is given: "http://host/admin" would
 *   reach for the namespace /admin/admin, which does not exist, and the UI said nothing. The
 *   natural guesses (the page's own address, a trailing slash) are taken as the origin; any
 *   other path is answered here, in words, and nothing is sent.
 */
(function () {
  "use strict";
  var ERROR_ID = "homeapp-login-error";
  function loginForm(root) {
    var password = root.querySelector && root.querySelector("form input[type=password]");
    return password ? password.form : null;
  }

  // not through the UI's saved server_url: with one saved, the UI connects at once without
  // credentials, and greets the operator with "Invalid credentials"
  function prefill() {
    var form = loginForm(document);
    var input = form && form.querySelector("input");
    if (!input || input.value || input.dataset.prefilled) return;
    input.dataset.prefilled = "yes";
    input.value = window.location.origin;
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }
  new MutationObserver(prefill).observe(document, { childList: true, subtree: true });

  function say(form, text) {
    var node = document.getElementById(ERROR_ID);
    if (!text) { if (node) node.remove(); return; }
    if (!node) {
      node = document.createElement("div");
      node.id = ERROR_ID;
      node.className = "red--text mt-3";
      node.setAttribute("role", "alert");
      form.appendChild(node);
    }
    node.textContent = text;
  }

  // capturing, on the document: it runs before the UI's own submit handler on the form
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form !== loginForm(document)) return;
    var input = form.querySelector("input");  // the first field of the login form is Server URL
    var url;
    try {
      url = new URL(input.value.trim());
    } catch (error) {
      url = null;
    }
    var path = url ? url.pathname : "";
    if (!url || !/^https?:$/.test(url.protocol) || url.search || url.hash
        || !/^\/(admin\/?)?$/.test(path)) {
      event.preventDefault();
      event.stopImmediatePropagation();
      say(form, "Server URL is the server's origin, such as " + window.location.origin
          + ", without a path: the UI adds the /admin namespace itself.");
      return;
    }
    say(form, "");
    if (input.value !== url.origin) {
      input.value = url.origin;
      input.dispatchEvent(new Event("input", { bubbles: true }));  // the UI's model follows the field
    }
  }, true);
})();
