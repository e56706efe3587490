// The script a worker runs to hold a collection (the page or main thread
// talks to it through workerCollection(), js/src/worker-protocol.mjs):
//
//   // browser                                      // Node
//   new Worker(new URL('shoal/worker-host',          new Worker(fileURLToPath(
//     import.meta.url), { type: 'module' })            import.meta.resolve('shoal/worker-host')))
//
// It imports the browser entry in a Web Worker and the Node entry in a
// worker thread.  Messages that arrive while it loads are kept and handled
// in order once it has.
import { serve } from './src/worker-protocol.mjs';

const isNode = typeof process === 'object' && typeof process.versions?.node === 'string';
const early = [];
let handle = (message) => early.push(message);

if (isNode) {
  const { parentPort } = await import('node:worker_threads');
  parentPort.on('message', (m) => handle(m));
  const shoal = await import('./node.mjs');
  handle = serve(shoal, (message, transfer) => parentPort.postMessage(message, transfer));
} else {
  self.addEventListener('message', (event) => handle(event.data));
  const shoal = await import('./browser.mjs');
  handle = serve(shoal, (message, transfer) => self.postMessage(message, transfer));
}
for (const message of early.splice(0)) handle(message);
