"""Rules of the product that do not know about Socket.IO."""
