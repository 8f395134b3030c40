package org.dermcds;

/**
 * A derm-cds call failed: a bad image, a missing or tampered package, an option this machine
 * cannot honour. The message names what is wrong; {@link #status()} says which kind of failure
 * it is, so an app can tell "retake the photo" (INVALID_IMAGE) from "reinstall the model"
 * (INVALID_PACKAGE).
 */
public final class DermCdsException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final Status status;

  /** Called by the native code with the C status number. */
  DermCdsException(int statusCode, String message) {
    super(Status.fromCode(statusCode).name().toLowerCase() + ": " + message);
    this.status = Status.fromCode(statusCode);
  }

  public Status status() {
    return status;
  }
}
