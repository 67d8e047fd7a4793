// Entrepot portal: an import's progress. Without this file the form posts as usual and
// the report page comes when the import ends.
// The server imports the file as it arrives, so the bytes it has accepted are how far
// the import has read: the bar follows the upload, then waits for the last batch.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.id !== "import-form" || !window.FormData || !window.XMLHttpRequest) return;
  event.preventDefault();
  const box = document.getElementById("import-progress");
  const bar = document.getElementById("import-bar");
  const status = document.getElementById("import-status");
  const button = form.querySelector("button[type=submit]");
  box.hidden = false;
  button.disabled = true;
  let told = -1;
  const say = (percent, text) => {
    bar.value = percent;
    bar.textContent = percent + "%";
    const step = Math.floor(percent / 25);
    if (step !== told || percent >= 100) { // a screen reader hears a few steps, not every one
      told = step;
      status.textContent = text;
    }
  };
  const request = new XMLHttpRequest();
  request.open("POST", form.action);
  request.upload.addEventListener("progress", (e) => {
    if (!e.lengthComputable) return;
    const percent = Math.min(99, Math.floor((e.loaded / e.total) * 100));
    say(percent, "Importing: " + percent + "% of the file read.");
  });
  request.upload.addEventListener("load", () => {
    say(99, "The whole file is read; writing the last records.");
  });
  request.addEventListener("load", () => {
    const page = new DOMParser().parseFromString(request.responseText, "text/html");
    const main = page.querySelector("main");
    if (!main) { form.submit(); return; }
    say(100, "Done.");
    document.title = page.title;
    document.querySelector("main").replaceWith(main);
    const heading = main.querySelector("h1");
    if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
  });
  request.addEventListener("error", () => {
    button.disabled = false;
    status.textContent = "The upload failed: the connection was lost. Try again.";
  });
  request.send(new FormData(form));
});
