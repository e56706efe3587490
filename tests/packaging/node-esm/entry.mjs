// `node entry.mjs <specifier>`: one export path per process (entries share
// the loader, so the last one imported would decide how wasm is found).
// Prints the search result, or the error the first load gives.
import { runSearch } from './search.mjs';

const specifier = process.argv[2];
try {
  console.log(JSON.stringify({ ok: true, value: await runSearch(await import(specifier)) }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: { name: err.name, code: err.code, message: err.message } }));
}
