// Hermes dashboard: progressive enhancement only; every page works without this file.
// Buttons with data-confirm ask before their form is submitted.
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  var question = button && button.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
