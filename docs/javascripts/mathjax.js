// MathJax 2 settings, read when assets/mathjax/MathJax.js (served by the site itself) loads.
// pymdownx.arithmatex wraps every formula in an element of class "arithmatex", as \( \) or \[ \].
// The combined configuration holds the TeX input and HTML output; its fonts are STIX-Web's.
window.MathJax = {
  config: ["TeX-AMS-MML_HTMLorMML-full.js"],
  tex2jax: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
    ignoreClass: ".*",
    processClass: "arithmatex",
  },
  "HTML-CSS": { availableFonts: ["STIX-Web"], preferredFont: "STIX-Web", webFont: "STIX-Web", imageFont: null },
  showMathMenu: false,
  messageStyle: "none",
};
