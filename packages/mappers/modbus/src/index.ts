// SPDX-License-Identifier: Apache-2.0
// @mapperkit/mapper-modbus — the Modbus TCP/RTU driver for @mapperkit/framework.
import modbusDriver from './driver.js';

export { createModbusDriver, type ModbusDriver, type LinkStats } from './driver.js';
export {
  protocolConfig,
  visitorConfig,
  defaultInterFrameDelay,
  KIND_WORDS,
  type ModbusProtocol,
  type ModbusVisitor,
  type Table,
  type Kind,
  type ByteOrder,
} from './config.js';
export { decodeRegisters, decodeBits, encodeWrite, toModelValue, reorder, scaleValue, unscale, type RawValue, type Encoded } from './codec.js';
export { planReads, bisect, spanOf, type PlanItem, type Span, type PlanOptions, type Barrier } from './planner.js';
export { CircuitBreaker, type BreakerState } from './breaker.js';
export { ModbusExceptionError, EXCEPTION_NAMES, exceptionKind } from './errors.js';
export { ThermostatSimulator, type SimulatorOptions } from './sim/simulator.js';

/** The default driver instance (what the `mapper-modbus` bin runs). */
export { modbusDriver };
export default modbusDriver;
