// Which tab is shown ("inbox", "review", "proposals", "intents", "answers", "canned", "models", "dashboard"; null while the app starts). The router in
// console.js sets it; views read it to render only when they are on screen.

let current = "inbox";

export const currentView = () => current;

export function setView(name) {
  current = name;
}
