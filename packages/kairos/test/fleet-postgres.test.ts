import { describeFleet } from './fleet-suite.ts';

// The same suite with the node on the machine's PostgreSQL, a schema of its own.
describeFleet('postgres');
