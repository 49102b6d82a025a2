// embed.mjs - embed the theater:simple WIT into a core module, as
// wit-component's `component-type` custom section, so `jco new` can turn
// it into a component. (`jco embed` the command fails to read files in jco
// 1.35; the API with the WIT given as source text works.)
//   node tools/jco/embed.mjs IN.wasm WIT_FILE WORLD OUT.wasm
// IN.wasm may be --dummy: a module with the world's signatures whose
// bodies trap (for decoder and world-check tests).
// Run with NODE_PATH pointing at the node_modules that holds jco.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const [input, witPath, world, output] = process.argv.slice(2);
if (!output) {
	console.error('usage: embed.mjs IN.wasm WIT_FILE WORLD OUT.wasm');
	process.exit(2);
}
const require = createRequire(import.meta.url);
const jcoPath = require.resolve('@bytecodealliance/jco', { paths: (process.env.NODE_PATH || '').split(':') });
const { componentEmbed } = await import(pathToFileURL(jcoPath).href);
const out = await componentEmbed({
	...(input === '--dummy' ? { dummy: true } : { binary: new Uint8Array(readFileSync(input)) }),
	witSource: readFileSync(witPath, 'utf8'),
	world,
	stringEncoding: 'utf8',
});
writeFileSync(output, out);
