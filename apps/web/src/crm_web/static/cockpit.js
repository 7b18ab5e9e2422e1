// The only script of our own: copy a text field's value (the calendar link) to the clipboard
// and say so where a screen reader hears it (data-copied names a role=status element).
// Event delegation, so buttons that htmx swaps in work too; no inline handlers (CSP).
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var field = document.querySelector(button.getAttribute("data-copy"));
  if (!field) return;
  var status = document.querySelector(button.getAttribute("data-copied") || "#none");
  field.select();
  var done = function () {
    button.textContent = "Kopieret";
    if (status) status.textContent = "Linket er kopieret.";
  };
  var fallback = function () {
    if (document.execCommand("copy")) {
      done();
    } else if (status) {
      status.textContent = "Linket kunne ikke kopieres; det er markeret, så du kan kopiere det selv.";
    }
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, fallback);
  } else {
    fallback();
  }
});
