/**
 * The gateway's fixed paths (README "Routes"), declared once: the media endpoint serves one,
 * the stream starter tells Twilio the others, the webhook routes serve them.
 */

/** The Media Streams WebSocket endpoint. */
export const MEDIA_PATH = '/media';
/** CreateStream's StatusCallback. */
export const STREAM_STATUS_PATH = '/twilio/stream-status';
/** The conference status callbacks. */
export const CONFERENCE_EVENTS_PATH = '/twilio/conference-events';
