// swift-tools-version:5.9
// The Muster engine for iOS (and macOS) apps. `scripts/build-xcframework`,
// run on a Mac with Xcode, fills in the two generated parts this package
// names: MusterFFI.xcframework (the Rust static library for each iOS
// target, with its C headers) and Sources/Muster/Muster.swift with
// muster_core.swift (the Swift
// bindings UniFFI generates). Neither is committed or edited by hand.
import PackageDescription

let package = Package(
    name: "Muster",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Muster", targets: ["Muster"]),
    ],
    targets: [
        .binaryTarget(name: "MusterFFI", path: "MusterFFI.xcframework"),
        .target(name: "Muster", dependencies: ["MusterFFI"], path: "Sources/Muster"),
    ]
)
