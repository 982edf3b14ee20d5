// SPDX-License-Identifier: Apache-2.0
// create-mapper — programmatic API (the CLI is a thin layer over these).
export { scaffold, renderProject, resolveOptions, type ScaffoldOptions, type ScaffoldResult, type RenderedProject } from './scaffold.js';
export { TEMPLATES, STREAM_OVERLAY, renameFiles, templatesRoot, listTemplateFiles, outputPath, ownVersion, type TemplateInfo } from './templates.js';
export { validatePackageName, validateProtocol } from './names.js';
export { upgrade, compareVersions, MIGRATIONS, FRAMEWORK_PACKAGE, type Migration, type UpgradeOptions, type UpgradeResult } from './upgrade.js';
export { doctor, formatReport, type DoctorOptions, type DoctorResult, type Problem } from './doctor.js';
export { writeSchemas, buildSchemas, type SchemaOptions } from './schema.js';
export { checkProjectShape, SHAPE_FILES, SHAPE_SCRIPTS, ENTRY_POINT, type ShapeProblem } from './shape.js';
export { loadProject, loadFramework, type LoadedProject } from './project.js';
export { main, type CliIo } from './cli.js';
export { CreateMapperError } from './errors.js';
