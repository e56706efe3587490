// bench/remote/serve.mjs -- a collection folder (DIR/blocks/<cid>) behind
// createGatewayServer on 127.0.0.1, counting what it serves, for the remote
// benchmarks (run.mjs, big.mjs).
import { createGatewayServer } from '../../js/node.mjs';

// { url, counts: { requests, bytes }, close() }; reset counts freely.
export async function countingGateway(dir) {
  const counts = { requests: 0, bytes: 0 };
  const server = await createGatewayServer({ dir });
  server.on('request', (req, res) => {
    counts.requests++;
    const end = res.end.bind(res);
    res.end = (body, ...rest) => {
      if (body) counts.bytes += body.length;
      return end(body, ...rest);
    };
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, counts, close: () => server.close() };
}
