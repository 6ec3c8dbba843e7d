import { describeFleet } from './fleet-suite.ts';

describeFleet('sqlite');
