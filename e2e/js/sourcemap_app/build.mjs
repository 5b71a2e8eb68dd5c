// Builds the shop's page minified, with source maps, the way a team's build does: esbuild and
// Sentry's esbuild plugin (real, unchanged), which injects debug ids and uploads the bundle to
// SENTRY_URL (Vigie) with SENTRY_AUTH_TOKEN. Usage: node build.mjs OUTDIR [--no-upload]
import * as esbuild from "esbuild";
import { sentryEsbuildPlugin } from "@sentry/esbuild-plugin";

const [outdir, flag] = process.argv.slice(2);
const plugins = flag === "--no-upload" ? [] : [
  sentryEsbuildPlugin({
    org: "acme",
    project: process.env.SENTRY_PROJECT,
    url: process.env.SENTRY_URL,
    authToken: process.env.SENTRY_AUTH_TOKEN,
    release: { name: "shop@1.0.0" },
    telemetry: false,
  }),
];
await esbuild.build({
  entryPoints: [new URL("./src/main.js", import.meta.url).pathname],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "iife",
  outdir,
  plugins,
  logLevel: "warning",
});
