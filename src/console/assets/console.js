// keygate console: conveniences only; every page works without this script.
document.querySelectorAll("[data-copy]").forEach(function (button) {
  var target = document.getElementById(button.getAttribute("data-copy"));
  if (!target || !navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(target.textContent.trim()).then(function () {
      button.textContent = "Copied";
      var live = document.getElementById("copy-status");
      if (live) live.textContent = "The key was copied to the clipboard.";
    });
  });
});
