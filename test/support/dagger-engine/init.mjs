// Runs inside the sandbox as the exec's parent (the role of Dagger's shim in
// engine/buildkit/shim.go): loopback ports relayed to the test's own servers, stdout/stderr
// optionally redirected to files (withExec redirectStdout/redirectStderr), the exit code passed on.
// argv: <spec.json> ; spec = { ports: number[], sockets: string, redirectStdout?, redirectStderr?, args: string[] }
import { spawn } from "node:child_process";
import { createWriteStream, readFileSync } from "node:fs";
import { connect, createServer } from "node:net";

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const servers = await Promise.all(
	spec.ports.map(
		(port) =>
			new Promise((ok, fail) => {
				const server = createServer((client) => {
					const upstream = connect(`${spec.sockets}/${port}.sock`);
					client.pipe(upstream).pipe(client);
					const close = () => {
						client.destroy();
						upstream.destroy();
					};
					client.on("error", close);
					upstream.on("error", close);
				});
				server.on("error", fail);
				server.listen(port, "127.0.0.1", () => ok(server));
			}),
	),
);
const [cmd, ...args] = spec.args;
const out = spec.redirectStdout ? createWriteStream(spec.redirectStdout) : undefined;
const err = spec.redirectStderr ? createWriteStream(spec.redirectStderr) : undefined;
const child = spawn(cmd, args, {
	stdio: ["ignore", out ? "pipe" : "inherit", err ? "pipe" : "inherit"],
});
if (out) child.stdout.pipe(out);
if (err) child.stderr.pipe(err);
child.on("error", (e) => {
	process.stderr.write(`exec ${cmd}: ${e.message}\n`);
	process.exitCode = 127;
	for (const s of servers) s.close();
});
child.on("close", (code, signal) => {
	for (const s of servers) s.close();
	const done = () => process.exit(code ?? (signal ? 128 + 9 : 1));
	if (out) out.end(() => (err ? err.end(done) : done()));
	else if (err) err.end(done);
	else done();
});
