// Bun with the package installed by npm: `bun app.mjs`.  The default import
// resolves through the "node" condition to node.mjs, which reads the .wasm
// next to it.
import * as shoal from 'shoal';
import { runSearch } from './search.mjs';

console.log(JSON.stringify(await runSearch(shoal)));
