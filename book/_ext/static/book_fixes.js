// book_fixes.js (book/_ext/book_fixes.py): the sidebar ("hamburger") and "Contents" buttons; the
// punctuation after an inline formula; figures that open full size; search snippets without raw TeX.
//
// The sidebar ("hamburger") and "Contents" buttons.
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

  // ---------------------------------------------------------------------------------------------
  // Figures open full size. On a phone a figure is shrunk to the column; a tap (a click, Enter or
  // Space) on a figure of the article shows it at its natural pixel size in an overlay
  // (.wganbook-lightbox) that scrolls and pans when the picture is larger than the screen. A click
  // anywhere, Escape or the close button closes it. The frames of the sliders (matplotlib's
  // to_jshtml, in .animation) are not figures: their own controls drive them.
  var FIGURES = "article .cell_output img, article figure img";
  var NOT_FIGURES = ".animation, .anim-controls, .wganbook-slider, button";
  var OPEN_LABEL = "Open the figure full size";
  var box = null, opener = null;

  function isFigure(img) {
    if (img.closest(NOT_FIGURES)) return false;
    var link = img.closest("a");
    return !link || link.classList.contains("image-reference");   // Sphinx's link to the image file
  }

  function closeBox() {
    if (!box || !box.hasAttribute("open")) return;
    if (typeof box.close === "function") box.close();
    else { box.removeAttribute("open"); afterClose(); }
  }

  function afterClose() {
    document.documentElement.classList.remove("wganbook-lightbox-open");
    var image = box.querySelector("img");
    image.removeAttribute("src");
    if (opener) opener.focus({preventScroll: true});
    opener = null;
  }

  function lightbox() {
    if (box) return box;
    box = document.createElement("dialog");
    box.className = "wganbook-lightbox";
    box.setAttribute("aria-label", "The figure at full size");
    var close = document.createElement("button");
    close.type = "button";
    close.className = "wganbook-lightbox-close";
    close.setAttribute("aria-label", "Close the full-size figure");
    close.title = "Close (Esc)";
    close.textContent = "\u00d7";
    var image = document.createElement("img");
    image.className = "wganbook-lightbox-image";
    image.decoding = "sync";
    box.appendChild(close);
    box.appendChild(image);
    box.addEventListener("click", closeBox);          // on the picture, the backdrop or the button
    box.addEventListener("close", afterClose);         // <dialog>: Escape closes it natively
    document.addEventListener("keydown", function (event) {   // browsers without <dialog>
      if (event.key === "Escape" && typeof box.showModal !== "function") closeBox();
    });
    document.body.appendChild(box);
    return box;
  }

  function openFull(img) {
    var dialog = lightbox(), image = dialog.querySelector("img");
    opener = img;
    image.src = img.currentSrc || img.src;
    image.alt = img.getAttribute("alt") || "";
    document.documentElement.classList.add("wganbook-lightbox-open");
    if (typeof dialog.showModal === "function") dialog.showModal();
    else dialog.setAttribute("open", "");
    dialog.scrollTop = 0;
    dialog.scrollLeft = 0;
    dialog.querySelector("button").focus({preventScroll: true});
  }

  function zoomable() {
    document.querySelectorAll(FIGURES).forEach(function (img) {
      if (img.classList.contains("wganbook-zoomable") || !isFigure(img)) return;
      img.classList.add("wganbook-zoomable");
      img.tabIndex = 0;
      img.setAttribute("role", "button");
      var alt = (img.getAttribute("alt") || "").trim();
      img.setAttribute("aria-label", alt ? OPEN_LABEL + ": " + alt : OPEN_LABEL);
      img.title = OPEN_LABEL;
      img.addEventListener("click", function (event) {
        event.preventDefault();                       // an image-reference link: stay on the page
        event.stopPropagation();
        openFull(img);
      });
      img.addEventListener("keydown", function (event) {
        if (event.key !== "Enter" && event.key !== " ") return;
        event.preventDefault();
        openFull(img);
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", zoomable);
  } else {
    zoomable();
  }

  // ---------------------------------------------------------------------------------------------
  // Search snippets without raw TeX. Sphinx's search page shows a piece of each page's text, in
  // which a formula is its TeX source ("\(\lambda\)"). Each snippet is rebuilt as text and formulas
  // (a delimiter the 240-character cut left without its partner is dropped with the piece it
  // opened or closed) and typeset by MathJax, which book_fixes.py loads on the search page with the
  // book's configuration; without MathJax the TeX is written as readable text ("λ").
  var TEX = /\\\(([\s\S]*?)\\\)|\\\[([\s\S]*?)\\\]/g;
  var SYMBOLS = {
    alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ε", varepsilon: "ε", zeta: "ζ",
    eta: "η", theta: "θ", vartheta: "ϑ", iota: "ι", kappa: "κ", lambda: "λ", mu: "μ", nu: "ν",
    xi: "ξ", pi: "π", rho: "ρ", sigma: "σ", tau: "τ", phi: "φ", varphi: "φ", chi: "χ", psi: "ψ",
    omega: "ω", Gamma: "Γ", Delta: "Δ", Theta: "Θ", Lambda: "Λ", Xi: "Ξ", Pi: "Π", Sigma: "Σ",
    Phi: "Φ", Psi: "Ψ", Omega: "Ω", le: "≤", leq: "≤", ge: "≥", geq: "≥", neq: "≠", ne: "≠",
    approx: "≈", sim: "∼", to: "→", rightarrow: "→", mapsto: "↦", infty: "∞", in: "∈",
    cdot: "·", times: "×", pm: "±", nabla: "∇", partial: "∂", sum: "∑", int: "∫", sqrt: "√",
    E: "𝔼", R: "ℝ", Lip: "Lip", sup: "sup", inf: "inf", max: "max", min: "min", log: "log",
    exp: "exp", ldots: "…", dots: "…", cdots: "⋯", quad: " ", qquad: " ", lvert: "|", rvert: "|",
    lVert: "‖", rVert: "‖", "|": "‖", ",": " ", ";": " ", "!": "", langle: "⟨", rangle: "⟩"
  };

  var ACCENTS = {hat: "\u0302", bar: "\u0304", tilde: "\u0303", dot: "\u0307", vec: "\u20d7"};
  function texAsText(tex) {
    return tex
      .replace(/\\(?:mathbb|mathcal|mathrm|mathbf|operatorname|text|textrm|boldsymbol)\s*(?:\{([^{}]*)\}|([A-Za-z]))/g,
               function (m, inner, one) {
                 inner = inner === undefined ? one : inner;
                 return inner === "E" ? "𝔼" : inner === "R" ? "ℝ" : inner;
               })
      .replace(/\\(hat|bar|tilde|dot|vec)\s*(?:\{([^{}]*)\}|([A-Za-z]))/g, function (m, accent, inner, one) {
        return (inner === undefined ? one : inner) + ACCENTS[accent];
      })
      .replace(/\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}/g, "($1)/($2)")
      .replace(/\\(?:left|right|[bB]igg?[lr]?)(?![A-Za-z])/g, "")
      .replace(/\\([A-Za-z]+|[|,;!])/g, function (m, name) {
        return Object.prototype.hasOwnProperty.call(SYMBOLS, name) ? SYMBOLS[name] : name;
      })
      .replace(/[{}]/g, "")
      .replace(/\s+/g, " ")
      .trim();
  }

  // The snippet's text cut into pieces {text} and {tex, display}; unbalanced delimiters dropped.
  function pieces(text) {
    var out = [];
    // a closing delimiter before any opening one: the snippet starts inside a formula
    var firstClose = text.search(/\\[)\]]/), firstOpen = text.search(/\\[([]/);
    if (firstClose >= 0 && (firstOpen < 0 || firstClose < firstOpen)) {
      text = "… " + text.slice(firstClose + 2);
    }
    var last = 0, m;
    TEX.lastIndex = 0;
    while ((m = TEX.exec(text)) !== null) {
      if (m.index > last) out.push({text: text.slice(last, m.index)});
      out.push({tex: m[1] !== undefined ? m[1] : m[2], display: m[1] === undefined});
      last = TEX.lastIndex;
    }
    var rest = text.slice(last);
    var open = rest.search(/\\[([]/);                 // a formula the cut left unfinished
    if (open >= 0) rest = rest.slice(0, open) + " …";
    rest = rest.replace(/\\[()[\]]/g, "");
    if (rest) out.push({text: rest});
    return out;
  }

  // Text with the words the search highlighted marked again (the rebuild loses Sphinx's spans).
  function highlighted(text, words) {
    var frag = document.createDocumentFragment();
    if (!words.length) { frag.appendChild(document.createTextNode(text)); return frag; }
    var re = new RegExp("(" + words.map(function (w) {
      return w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    }).join("|") + ")", "gi");
    text.split(re).forEach(function (part, i) {
      if (!part) return;
      if (i % 2) {
        var span = document.createElement("span");
        span.className = "highlighted";
        span.textContent = part;
        frag.appendChild(span);
      } else {
        frag.appendChild(document.createTextNode(part));
      }
    });
    return frag;
  }

  function cleanSnippet(p) {
    if (p.dataset.wganbookTex) return;
    var text = p.textContent;
    if (!/\\[()[\]]/.test(text)) { p.dataset.wganbookTex = "none"; return; }
    var words = [];
    p.querySelectorAll(".highlighted").forEach(function (s) {
      var w = s.textContent.trim();
      if (w && words.indexOf(w) < 0) words.push(w);
    });
    var mj = window.MathJax, typeset = !!(mj && mj.startup && mj.startup.promise);
    p.dataset.wganbookTex = "pending";
    p.classList.add("tex2jax_ignore");                 // MathJax's own page pass leaves it alone
    p.textContent = "";
    var maths = [];
    pieces(text).forEach(function (piece) {
      if (piece.text !== undefined) { p.appendChild(highlighted(piece.text, words)); return; }
      var span = document.createElement("span");
      span.className = "math wganbook-snippet-math";  // "math" is in the book's processHtmlClass
      span.dataset.tex = piece.tex;
      span.textContent = typeset ? (piece.display ? "\\(\\displaystyle " + piece.tex + "\\)"
                                                  : "\\(" + piece.tex + "\\)")
                                 : texAsText(piece.tex);
      p.appendChild(span);
      maths.push(span);
    });
    if (!typeset) { p.dataset.wganbookTex = "text"; return; }
    function asText() {
      maths.forEach(function (span) {
        if (!span.querySelector("mjx-container") || span.querySelector("mjx-merror")) {
          span.textContent = texAsText(span.dataset.tex);
        }
      });
    }
    mj.startup.promise
      .then(function () { return mj.typesetPromise(maths); })
      .then(function () { asText(); p.dataset.wganbookTex = "typeset"; })
      .catch(function () { asText(); p.dataset.wganbookTex = "text"; });
  }

  function watchSearch() {
    var results = document.getElementById("search-results");
    if (!results || typeof MutationObserver === "undefined") return;
    var scan = function () { results.querySelectorAll("p.context").forEach(cleanSnippet); };
    new MutationObserver(scan).observe(results, {childList: true, subtree: true});
    scan();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", watchSearch);
  } else {
    watchSearch();
  }
})();
