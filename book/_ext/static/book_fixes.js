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

  // Inline formulas are boxes the browser may break a line after, which leaves a lone "," or "."
  // at the start of the next line ("offset θ / , checked"). Keep the punctuation with its formula.
  function gluePunctuation() {
    document.querySelectorAll("mjx-container:not([display='true'])").forEach(function (box) {
      if (box.parentNode.classList.contains("math") && box.parentNode.childNodes.length === 1) {
        box = box.parentNode;   // MyST's <span class="math"> around the formula
      }
      var next = box.nextSibling;
      if (!next || next.nodeType !== 3) return;
      var m = /^[.,;:!?)\]]+/.exec(next.nodeValue);
      if (!m || box.parentNode.classList.contains("book-fixes-nowrap")) return;
      var wrap = document.createElement("span");
      wrap.className = "book-fixes-nowrap";
      wrap.style.whiteSpace = "nowrap";
      box.parentNode.insertBefore(wrap, box);
      wrap.appendChild(box);
      wrap.appendChild(document.createTextNode(m[0]));
      next.nodeValue = next.nodeValue.slice(m[0].length);
    });
  }
  window.addEventListener("load", function () {
    var mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) mj.startup.promise.then(gluePunctuation);
  });
})();
