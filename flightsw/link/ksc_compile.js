// Compile a .ksy file with the npm build of the Kaitai Struct compiler (which has no CLI).
// Usage: node ksc_compile.js <node_modules dir> <file.ksy> <target language> <output dir>
"use strict";
const path = require("path");
const fs = require("fs");
const [modules, ksyPath, target, outDir] = process.argv.slice(2);
if (!modules || !ksyPath || !target || !outDir) {
  console.error("usage: node ksc_compile.js <node_modules> <file.ksy> <target> <outdir>");
  process.exit(2);
}
const loaded = require(path.join(modules, "kaitai-struct-compiler"));
// Before 0.11 the module exports a constructor; from 0.11 the compiler object itself.
const compiler = typeof loaded === "function" ? new loaded() : loaded;
const yaml = require(path.join(modules, "js-yaml"));
const spec = yaml.load(fs.readFileSync(ksyPath, "utf8"));
compiler.compile(target, spec, null, false).then((files) => {
  fs.mkdirSync(outDir, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    fs.writeFileSync(path.join(outDir, name), text);
    console.log(path.join(outDir, name));
  }
}).catch((err) => {
  console.error("ksy compile error: " + (err && err.stack ? err.stack : JSON.stringify(err)));
  process.exit(1);
});
