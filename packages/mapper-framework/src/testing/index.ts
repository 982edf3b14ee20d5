// SPDX-License-Identifier: Apache-2.0
// @mapperkit/framework/testing — for driver authors' and mapper tests.
export { TestEdgecore, type TestEdgecoreOptions, type StoredTwin } from './test-edgecore.js';
export { describeDriverConformance, type ConformanceOptions, type ConformanceProperty } from './conformance.js';
