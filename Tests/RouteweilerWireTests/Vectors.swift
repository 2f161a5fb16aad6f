import Foundation

/// Loads the shared cross-implementation test vectors (`shared/vectors/<name>`).
///
/// Search order: `$ROUTEWEILER_VECTORS/<name>`, then `<package root>/../shared/vectors/<name>`
/// (package root found from this file's `#filePath`), then `/work/shared/vectors/<name>`.
enum Vectors {
    struct NotFound: Error, CustomStringConvertible {
        let name: String
        let searched: [String]
        var description: String { "test vector file '\(name)' not found; searched: \(searched.joined(separator: ", "))" }
    }

    static func candidates(_ name: String, filePath: String = #filePath) -> [String] {
        var paths: [String] = []
        if let env = ProcessInfo.processInfo.environment["ROUTEWEILER_VECTORS"], !env.isEmpty {
            paths.append(URL(fileURLWithPath: env).appendingPathComponent(name).path)
        }
        // <root>/Tests/<target>/Vectors.swift → <root>/../shared/vectors/<name>
        let root = URL(fileURLWithPath: filePath)
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .deletingLastPathComponent()
        paths.append(root.deletingLastPathComponent().appendingPathComponent("shared/vectors").appendingPathComponent(name).path)
        paths.append("/work/shared/vectors/\(name)")
        return paths
    }

    /// The raw bytes of the vector file `name` (e.g. `"macaroons.json"`).
    static func load(_ name: String) throws -> Data {
        let paths = candidates(name)
        for path in paths where FileManager.default.fileExists(atPath: path) {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        }
        throw NotFound(name: name, searched: paths)
    }
}
