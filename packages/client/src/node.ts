// `@kairos/client/node`: what only runs on Node.js, kept out of the entry point that browsers load.
export { nodeTransport } from './node-transport.ts';
