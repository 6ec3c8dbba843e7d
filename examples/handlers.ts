// Handlers for `kairos worker --handlers examples/handlers.ts` (the README's cluster recipe).
import type { RunContext } from '@kairos/worker';

export default {
  'demo.hello': async (ctx: RunContext) => ({ greeting: 'Hello from Kairos', fireTime: ctx.fireTime }),
};
