import Database from "better-sqlite3";
const orig = Database.prototype.exec;
const acc = new Map();
Database.prototype.exec = function (sql) {
  const t = performance.now();
  try { return orig.call(this, sql); } finally {
    const d = performance.now() - t;
    const caller = new Error().stack.split("\n")[2].trim().replace(/\(.*\/dist\//, "(");
    const k = caller + (sql.length < 30 ? " " + sql : "");
    const e = acc.get(k) ?? [0, 0]; e[0] += d; e[1]++; acc.set(k, e);
  }
};
process.argv.splice(4, 0);
await import("./_rp.mjs");
for (const [k, [t, n]] of [...acc].sort((a, b) => b[1][0] - a[1][0]).slice(0, 15)) console.log(t.toFixed(1).padStart(8), String(n).padStart(6), k);
