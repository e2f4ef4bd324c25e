// Copy the figures next to the HTML decks, so that a deck's "../figs/NAME.png" resolves from html/<lang>/ too,
// whether the HTML is opened from disk or served. The figures themselves come from `python -m course_lib.tools.figures`.
const fs = require("fs");
const path = require("path");

const source = path.join(__dirname, "figs");
const target = path.join(__dirname, "html", "figs");
if (fs.existsSync(source)) {
  fs.rmSync(target, { recursive: true, force: true });
  fs.cpSync(source, target, { recursive: true });
} else {
  console.warn("slides/figs/ is missing: the decks' images will not show. Make them with `python -m course_lib.tools.figures`.");
}
