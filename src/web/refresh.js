// Refreshes the admin page's status facts every 10 seconds without reloading the page: each
// element with data-fact="key" gets the value of that key from /admin/status.json. Served as a
// file so that the Content-Security-Policy can keep forbidding inline script.
"use strict";
async function refresh() {
  try {
    const response = await fetch("/admin/status.json", { credentials: "same-origin" });
    if (!response.ok) return;
    const facts = await response.json();
    for (const element of document.querySelectorAll("[data-fact]")) {
      const value = facts[element.dataset.fact];
      if (typeof value === "string" && element.textContent !== value) element.textContent = value;
    }
    const stamp = document.getElementById("refreshed");
    if (stamp) stamp.textContent = "Updated " + new Date().toLocaleTimeString();
  } catch (error) {
    // The box may be restarting its services; the next round tries again.
  }
}
setInterval(refresh, 10000);
