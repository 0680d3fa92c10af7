// Progressive enhancement only: every page works without this file.
document.addEventListener("DOMContentLoaded", () => {
  const all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", () => {
      document.querySelectorAll('input[name="alert_id"]').forEach((box) => {
        box.checked = all.checked;
      });
    });
  }
});
