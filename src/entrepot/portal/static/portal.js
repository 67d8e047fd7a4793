// Entrepot portal: small enhancements; every page works without this file.
// A copy button copies the value of the element its data-copy attribute names.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const text = source.value !== undefined ? source.value : source.textContent;
  const done = () => {
    button.textContent = "Copied";
    const status = document.getElementById(button.dataset.copy + "-status");
    if (status) status.textContent = "Copied to the clipboard.";
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => source.select && source.select());
  } else if (source.select) {
    source.select();
    document.execCommand("copy");
    done();
  }
});
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy][hidden]")) {
    button.hidden = false; // shown only where it works
  }
});
