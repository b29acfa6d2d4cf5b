// book_fixes.js (book/_ext/book_fixes.py): the sidebar ("hamburger") and "Contents" buttons.
//
// sphinx-book-theme 1.3.0 and pydata-sphinx-theme 0.17 both bind their handlers to the FIRST
// .primary-toggle / .secondary-toggle of the page, which in PST 0.17 is a hidden button of its
// new top navbar (pydata-sphinx-theme#2451, sphinx-book-theme#988): the buttons the reader sees
// do nothing. Here a click on a visible button is handed to the bound one, whose handlers then
// collapse the sidebar (wide screens) or open the chapter list / page contents (phones, tablets).
(function () {
  function fix() {
    ["primary", "secondary"].forEach(function (kind) {
      var buttons = Array.prototype.slice.call(document.querySelectorAll("." + kind + "-toggle"));
      var bound = buttons[0];
      buttons.slice(1).forEach(function (btn) {
        btn.addEventListener("click", function (event) {
          if (bound.offsetParent !== null) return;   // the bound button is visible: nothing to fix
          event.preventDefault();
          event.stopPropagation();
          bound.click();
        });
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", fix);
  } else {
    fix();
  }
})();
