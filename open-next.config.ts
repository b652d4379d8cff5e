// OpenNext config for the example app. No incremental cache: every page reads D1 per request.
import { defineCloudflareConfig } from "@opennextjs/cloudflare";

export default {
	...defineCloudflareConfig(),
	// OpenNext runs `npm run build` by default. This repo has no `build` script on purpose (one
	// that calls `opennextjs-cloudflare build` would recurse), so it runs Next directly.
	buildCommand: "npx --no-install next build",
};
